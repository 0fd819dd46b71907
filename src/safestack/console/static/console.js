// safestack console: the chat form streams answers (server-sent events over a POST fetch) and
// the "Branch here" buttons choose the turn the next message follows. Everything a model or an
// expert wrote is set with textContent, never as HTML.
"use strict";

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function column(live, target) {
  let box = live.querySelector('[data-target="' + CSS.escape(target) + '"]');
  if (!box) {
    box = document.createElement("div");
    box.className = "turn assistant streaming";
    box.dataset.target = target;
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("strong");
    name.textContent = target;
    meta.appendChild(name);
    const text = document.createElement("div");
    text.className = "text answer-text";
    box.appendChild(meta);
    box.appendChild(text);
    live.appendChild(box);
    live.className = "answers cols-" + live.children.length;
  }
  return box;
}

function parseEvents(buffer, handle) {
  let cut;
  while ((cut = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    handle(event, data ? JSON.parse(data) : {});
  }
  return buffer;
}

async function send(form) {
  const live = document.getElementById("live");
  const problem = document.getElementById("chat-error");
  const button = document.getElementById("send-button");
  const targets = Array.from(form.querySelectorAll('input[name="targets"]:checked')).map((i) => i.value);
  problem.hidden = true;
  live.replaceChildren();
  if (targets.length < 1 || targets.length > 2) {
    problem.textContent = "choose one target, or two to compare side by side";
    problem.hidden = false;
    return;
  }
  const body = {
    parent_id: document.getElementById("parent_id").value || null,
    content: document.getElementById("content").value,
    targets: targets,
    system_prompt: document.getElementById("system_prompt").value,
  };
  button.disabled = true;
  const conversation = form.dataset.conversation;
  let leaf = null;
  let failed = false;
  try {
    const response = await fetch("/c/" + conversation + "/send", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), "Accept": "text/event-stream" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const message = page.getElementById("error-message");
      problem.textContent = response.status + ": " + (message ? message.textContent : response.statusText);
      problem.hidden = false;
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), (event, data) => {
        if (event === "user") leaf = data.turn_id;
        else if (event === "delta") column(live, data.target).querySelector(".text").textContent += data.text;
        else if (event === "done") { leaf = data.turn_id; column(live, data.target).classList.remove("streaming"); }
        else if (event === "error") {
          failed = true;
          const box = column(live, data.target);
          box.classList.add("failed");
          const text = box.querySelector(".text");
          text.textContent = data.message;
          text.classList.add("error");
        }
      });
    }
  } catch (error) {
    problem.textContent = "the console did not answer: " + error;
    problem.hidden = false;
    failed = true;
  } finally {
    button.disabled = false;
  }
  if (leaf && !failed) {
    window.location.assign("/c/" + conversation + "?leaf=" + encodeURIComponent(leaf));
  } else if (leaf) {
    const link = document.createElement("a");
    link.href = "/c/" + conversation + "?leaf=" + encodeURIComponent(leaf);
    link.textContent = "show the conversation";
    link.id = "after-error";
    live.appendChild(link);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("send");
  if (!form) return;
  const parent = document.getElementById("parent_id");
  const original = parent.value;
  const note = document.getElementById("branch-note");
  form.addEventListener("submit", (event) => { event.preventDefault(); send(form); });
  for (const button of document.querySelectorAll("button.branch")) {
    button.addEventListener("click", () => {
      parent.value = button.dataset.parent;
      document.getElementById("branch-label").textContent = button.dataset.label;
      note.hidden = false;
      document.getElementById("content").focus();
    });
  }
  document.getElementById("branch-cancel").addEventListener("click", () => {
    parent.value = original;
    note.hidden = true;
  });
});
