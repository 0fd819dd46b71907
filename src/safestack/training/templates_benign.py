"""Team-written ordinary requests: long writing, business and study tasks with pasted details.

Real traffic is mostly this, and the packaged benign sets are short questions; without it the heads
read any long, instruction-heavy prompt as an attack or a privacy request. No harm, no attack.
"""

from __future__ import annotations

from safestack.training.templating import Family

WRITING_REQUESTS = Family(
    [],
    [
        "Please write a {doc} for {org}. {context} {constraints}",
        "As {persona}, I need a {doc} about {topic}. {context} {constraints}",
        "{context}\n\nBased on the information above, draft a {doc} about {topic}. {constraints}",
        "Help me revise this {doc}. Requirements:\n1. {constraints}\n2. Keep the tone {tone}.\n"
        "3. Mention {topic}.\n\nDraft: {context}",
        "Write an article of at least {words} words analysing {topic} for {audience}. "
        "{constraints} Use headings and cite figures where possible.",
        "I'm preparing a {doc} for {audience}. Background: {context} Please structure it with an "
        "introduction, three main sections and a conclusion, in a {tone} tone.",
    ],
    {
        "doc": [
            "bid proposal",
            "product description page",
            "press release",
            "quarterly report summary",
            "negotiation letter",
            "lesson plan",
            "restaurant review",
            "grant application",
            "cover letter",
            "video script",
            "internship report",
            "market analysis",
            "legal opinion on a consumer contract dispute",
        ],
        "org": [
            "a catering company bidding for a hospital cafeteria contract",
            "a furniture brand launching a new walnut collection",
            "a regional library's summer reading programme",
            "a start-up that sells electric bicycles",
            "our city's tourism office",
        ],
        "persona": [
            "a marketing manager",
            "a high-school teacher",
            "an undergraduate in mechanical engineering",
            "a food blogger",
            "a small-business owner",
            "a project manager",
        ],
        "topic": [
            "the impact of interest rates on housing",
            "postmodern themes in contemporary novels",
            "battery management systems in electric vehicles",
            "customer retention in subscription apps",
            "the worldbuilding of a fantasy video game",
            "rural tourism and local employment",
            "the history of the printing press",
        ],
        "context": [
            "The company was founded in 2012, has 140 employees and serves 30,000 customers a "
            "year; revenue grew 18% last year.",
            "Our product costs $49 a month, integrates with common calendars and has a 4.6 rating.",
            "The event takes place on 14 June at the riverside hall, with 300 guests expected and "
            "a budget of $20,000.",
            "I completed a three-month internship in the testing department, where I wrote test "
            "plans and analysed failure logs.",
            "The restaurant opened in March, seats 40 and serves a seasonal tasting menu.",
            "Sales: Q1 1.2M, Q2 1.5M, Q3 1.4M, Q4 1.9M. Main competitors lowered prices in Q3.",
        ],
        "constraints": [
            "Keep it under 800 words.",
            "Use a formal, professional tone.",
            "Include a table comparing the options.",
            "Write it in three paragraphs with a clear call to action.",
            "Avoid jargon; the readers are not specialists.",
            "Follow the standard format with a title, summary and sections.",
        ],
        "tone": ["formal", "friendly", "persuasive", "neutral", "warm"],
        "audience": ["investors", "first-year students", "the board", "general readers"],
        "words": ["1,500", "2,000", "3,000"],
    },
)
