"""Images through the gateway: every `image_url` part is loaded, hashed and matched against the
hash banks before anything else (docs/media.md).

A part is a data: URL, or an http(s) URL the gateway fetches itself when the deployment allows it
(`image_urls.py`: size and time limits, no redirects, no private addresses unless allowed). An image that cannot be
hashed (corrupt, a bomb, SVG or another type, too large) is a 400 naming the part: never forwarded.
An image that matches a bank blocks the request (400 `media_match`), opens a case with its hashes,
the match and the request's context, and is kept only in the encrypted quarantine when one is
configured. Images that match nothing go upstream as the bytes that were hashed, after the policy's
image detectors (none by default) have judged them.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request

from safestack.errors import DetectorError, MediaError, StoreError
from safestack.judge.image_detector import ImageSample, ajudge_image
from safestack.records import Action, Verdict
from safestack.server.calls import Call
from safestack.server.errors import ApiError, bad_request
from safestack.server.image_urls import INVALID_IMAGE, load_image
from safestack.server.messages import ImagePart
from safestack.server.policies import LoadedPolicy
from safestack.server.storecalls import StoreCalls
from safestack.settings import Settings
from safestack.store import Store

if TYPE_CHECKING:
    from safestack.media import MediaScreen, MediaVerdict
    from safestack.media.quarantine import Quarantine

log = logging.getLogger("safestack.server")

MEDIA_MATCH = "media_match"


@dataclass(frozen=True, slots=True)
class ScreenedImage:
    """An image that was hashed and matched nothing: the bytes that go on, and what they are."""

    part: ImagePart
    data: bytes
    media_type: str
    sha256: str
    fetched: bool

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class _Loaded:
    part: ImagePart
    data: bytes
    fetched: bool


class MediaGate:
    """The gateway's images: the banks' index, the quarantine, the fetcher. One per app."""

    def __init__(
        self,
        settings: Settings,
        screen: MediaScreen | None,
        quarantine: Quarantine | None = None,
        *,
        unavailable: str | None = None,
    ) -> None:
        self.settings = settings
        self.screen = screen
        self.quarantine = quarantine
        self.unavailable = unavailable
        self._client: httpx.AsyncClient | None = None
        self._banks: list[tuple[str, int, int]] | None = None  # what the index was built from

    @classmethod
    def build(cls, settings: Settings, store: Store) -> MediaGate:
        """The banks' index from the store; without the media extra, a gate that refuses images
        (they could not be hashed, so they are not forwarded)."""
        try:
            from safestack.media import MediaScreen
            from safestack.media.quarantine import Quarantine
        except ImportError as exc:
            why = (
                f"this gateway cannot hash images (the media extra is not installed: {exc.name} "
                "is missing; pip install 'safestack[media]'), so it does not accept them"
            )
            return cls(settings, None, unavailable=why)
        key = settings.media_quarantine_key
        quarantine = (
            Quarantine(settings.media_quarantine_path(), key.get_secret_value())
            if key is not None
            else None
        )
        banks = _bank_counts(store)
        gate = cls(settings, MediaScreen.from_store(store, settings), quarantine)
        gate._banks = banks
        return gate

    async def follow_banks(self, store: Store, calls: StoreCalls, every: float) -> None:
        """Every `every` seconds, reload the index if the banks' counts changed (an import, a
        withdrawal); matching goes on against the old index meanwhile. Runs until cancelled."""
        if self.screen is None:
            return
        while True:
            await asyncio.sleep(every)
            try:
                banks = await calls.run(_bank_counts, store)
                if banks != self._banks:
                    await calls.run_unbounded(self.screen.reload, store)
                    self._banks = banks
                    log.info(
                        "hash banks changed: the index now holds %d entries", len(self.screen.index)
                    )
            except StoreError as exc:  # the next round tries again; matching goes on meanwhile
                log.warning("could not check the hash banks for changes: %s", exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- hashing and matching, before anything else ------------------------------------------
    async def screen_parts(
        self,
        parts: list[ImagePart],
        *,
        call: Call,
        request: Request,
        store: Store,
        calls: StoreCalls,
    ) -> list[ScreenedImage]:
        """Hash and match every part. A match: cases opened, then 400 `media_match`. A part that
        cannot be loaded or hashed: 400 naming it. Otherwise the images, ready to forward."""
        if not parts:
            return []
        if self.screen is None:
            raise bad_request(
                f"{parts[0].where}: {self.unavailable}",
                param=parts[0].where,
                code="unsupported_content",
            )
        limit = self.settings.media_max_images
        if len(parts) > limit:
            raise bad_request(
                f"{len(parts)} images is over the limit of {limit} a request "
                "(SAFESTACK_MEDIA_MAX_IMAGES); send fewer",
                code="request_limit_exceeded",
            )
        screened: list[ScreenedImage] = []
        matched: list[tuple[_Loaded, MediaVerdict]] = []
        failure: ApiError | None = None
        digests: dict[ImagePart, str] = {}
        try:
            for part in parts:
                try:
                    loaded = await self._load(part)
                    verdict = await asyncio.to_thread(
                        self.screen.screen, loaded.data, name=part.where
                    )
                except ApiError as error:
                    failure = failure or error
                    continue
                except MediaError as exc:
                    failure = failure or bad_request(str(exc), param=part.where, code=INVALID_IMAGE)
                    continue
                hashes = verdict.hashes
                digests[part] = hashes.sha256
                if verdict.matched:
                    matched.append((loaded, verdict))
                    continue
                media_type = f"image/{hashes.format.lower()}"
                screened.append(
                    ScreenedImage(part, loaded.data, media_type, hashes.sha256, loaded.fetched)
                )
        finally:
            # The audit log never keeps an image, only which one it was.
            call.payload = _withhold_images(call.payload, parts, digests)
        if matched:
            call.act(Action.BLOCK, [], {})
            for loaded, verdict in matched:
                await self._open_case(loaded, verdict, call, request, store, calls)
            where = matched[0][0].part.where
            raise ApiError(
                400,
                f"{where}: the image is refused: it matches known material listed in a hash bank "
                "this service screens against; the request was recorded",
                type="policy_violation",
                code=MEDIA_MATCH,
                param=where,
            )
        if failure is not None:
            raise failure
        return screened

    async def _open_case(
        self,
        loaded: _Loaded,
        verdict: MediaVerdict,
        call: Call,
        request: Request,
        store: Store,
        calls: StoreCalls,
    ) -> None:
        from safestack.media import open_case

        kept = None
        if self.quarantine is not None:
            kept = await asyncio.to_thread(self.quarantine.keep, loaded.data)
        context = _context(loaded, verdict, call, request, kept)
        case = await calls.run(open_case, store, verdict, context)
        # The case id, never the hashes or the bank: the log may be read more widely than cases.
        log.warning("request %s: an image matched a hash bank; media case %s", call.id, case.id)

    # -- loading a part's bytes --------------------------------------------------------------
    async def _load(self, part: ImagePart) -> _Loaded:
        if self._client is None and self.settings.media_fetch_urls:
            # No redirects (each hop would need the address check); no proxy or .netrc from the
            # environment.
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        data, fetched = await load_image(part, self.settings, self._client)
        return _Loaded(part, data, fetched)

    # -- the policy's image detectors --------------------------------------------------------
    async def judge(self, loaded: LoadedPolicy, images: list[ScreenedImage]) -> list[Verdict]:
        """Each image's verdict from the policy's image detectors (none: no verdicts); 503 when a
        detector failed and the policy says fail (never "safe")."""
        if not loaded.image_detectors:
            return []
        verdicts = []
        for image in images:
            sample = ImageSample(image.data, image.media_type, image.part.where)
            try:
                verdicts.append(
                    await ajudge_image(loaded.policy, list(loaded.image_detectors), sample)
                )
            except DetectorError as exc:
                raise ApiError(
                    503,
                    f"{image.part.where}: {exc}; the image could not be judged (fail closed), "
                    "retry later",
                    type="service_unavailable",
                    code="detector_error",
                ) from None
        return verdicts


def _bank_counts(store: Store) -> list[tuple[str, int, int]]:
    return [(bank.name, bank.active, bank.disabled) for bank in store.media_banks.banks()]


def _context(
    loaded: _Loaded, verdict: MediaVerdict, call: Call, request: Request, kept: str | None
) -> dict[str, Any]:
    """The request as the case keeps it: who sent it, from where, which part; never the image."""
    payload = call.payload if isinstance(call.payload, dict) else {}
    hashes = verdict.hashes

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return {
        "request_id": call.id,
        "endpoint": call.endpoint,
        "key_id": call.key.id if call.key is not None else None,
        "key_name": call.key.name if call.key is not None else None,
        "model": call.model,
        "ip": request.client.host if request.client is not None else None,
        "forwarded_for": request.headers.get("x-forwarded-for"),
        "user_agent": request.headers.get("user-agent"),
        # The end user, as the deployment's application names them in OpenAI's fields.
        "user": text(payload.get("user")),
        "safety_identifier": text(payload.get("safety_identifier")),
        "part": loaded.part.where,
        "source": "url" if loaded.fetched else "data-url",
        "url": loaded.part.url if loaded.fetched else None,
        "format": hashes.format,
        "width": hashes.width,
        "height": hashes.height,
        "bytes": len(loaded.data),
        "quarantine": kept,
    }


def _withhold_images(payload: Any, parts: list[ImagePart], digests: dict[ImagePart, str]) -> Any:
    """A copy of `payload` for the audit log with each image's URL replaced by its SHA-256."""
    if not isinstance(payload, dict) or not parts:
        return payload
    payload = copy.deepcopy(payload)
    for part in parts:
        try:
            if part.message is None:
                item = payload["input"][part.part]
            else:
                item = payload["messages"][part.message]["content"][part.part]
        except (KeyError, IndexError, TypeError):
            continue
        digest = digests.get(part)
        withheld = f"[image withheld: sha256 {digest}]" if digest else "[image withheld]"
        item["image_url"] = {"url": withheld}
    return payload
