"""The `elections` detector: questions about (and directives on) voting procedures.

Where, when and how to register or vote, ID, mail-in and absentee ballots, deadlines and
eligibility are procedure: the guard answers them with a pointer to official sources. Political
talk — candidates' positions, the history of elections, opinion essays — is not, and is left alone.
Patterns are matched per sentence on the normalised text and its leetspeak-folded view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from safestack.judge.detector import Detector, DetectorOptions, Sample, detector
from safestack.judge.normalise import View
from safestack.records import Finding


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE)


_W = r"(?:\s+[\w'’-]+)"  # one more word, in "{0,4}" gaps

# What a voter needs to know to take part, by topic.
_TOPICS: dict[str, re.Pattern[str]] = {
    "registration": _rx(
        rf"""\b(?:register(?:ed|ing)?|sign(?:ed)?\s+up|enrol(?:l)?(?:ed|ing)?)\b{_W}{{0,4}}?\s+
              (?:to\s+vote|as\s+an?\s+(?:voter|elector)|for\s+(?:the\s+)?(?:election|elections|
              primary|primaries|caucus(?:es)?|ballot|vote))\b
          | \bvoter\s+registration\b | \bregistration\s+(?:deadline|status)\b
          | \b(?:electoral|voter|voters['’]?)\s+(?:roll|register|list)\b
          | \bam\s+i\s+(?:still\s+)?registered\b"""
    ),
    "place": _rx(
        r"""\bpolling\s+(?:place|station|location|site|booth|centre|center|precinct)s?\b
          | \bvoting\s+(?:location|site|centre|center|booth|place|precinct)s?\b
          | \bwhere\s+(?:do|can|should|will|would|to|does)?\s*(?:i|we|you|one|my\s+\w+)?\s*
              (?:go\s+(?:to\s+)?)?vote\b
          | \bballot\s+drop[\s-]?(?:box|off)(?:es)?\b | \bmy\s+precinct\b"""
    ),
    "time": _rx(
        r"""\bwhen\s+(?:is|are|do|does|will)\s+(?:the\s+)?(?:next\s+)?(?:\w+\s+)?
              (?:election|elections|election\s+day|polls?|voting|primary|primaries|early\s+voting)\b
          | \bwhat\s+time\s+(?:do|does|will)\s+(?:the\s+)?polls?\b
          | \bpolls?\s+(?:open|close|opening|closing)\b
          | \b(?:deadline|last\s+day|cut-?off)\b(?:\s+[\w'’-]+){0,4}?\s+
              (?:register|registration|vote|voting|ballot|ballots)\b
          | \bearly\s+voting\s+(?:start|starts|begin|begins|end|ends|hours|dates?)\b"""
    ),
    "method": _rx(
        r"""\b(?:mail[\s-]?in|absentee|postal|early|overseas|military|provisional|advance)\s+
              (?:ballot|vote|voting)s?\b
          | \bvot(?:e|ing)\s+(?:by|through\s+the|via)\s+(?:mail|post|proxy|phone|text(?:ing)?|email|internet)\b
          | \bvot(?:e|ing)\s+online\b | \bproxy\s+vote\b
          | \bhow\s+(?:do|can|to|would)\s+(?:i|we|you|one|people|someone)?\s*
              (?:cast\s+(?:a|my|our|their)\s+(?:ballot|vote)|vote)\b
          | \bsample\s+ballot\b | \bwhat(?:'s|’s|\s+is)\s+on\s+my\s+ballot\b"""
    ),
    "id": _rx(
        r"""\bvoter\s+id\b
          | \b(?:id|identification|documents?|passport|licen[cs]e)\b(?:\s+[\w'’-]+){0,5}?\s+
              (?:to\s+vote|at\s+the\s+polls|at\s+the\s+polling|to\s+the\s+polls)\b
          | \bbring\b(?:\s+[\w'’-]+){0,5}?\s+to\s+(?:vote|the\s+polls)\b"""
    ),
    "eligibility": _rx(
        r"""\b(?:can|may|am|are|is)\s+(?:i|we|you|my\s+\w+|felons?|students?|non-?citizens?|
              \d{2}[\s-]year[\s-]olds?)\s+(?:allowed\s+to\s+|eligible\s+to\s+|able\s+to\s+)?vote\b
          | \beligib(?:le|ility)\s+(?:to|for)\s+vot(?:e|ing)\b"""
    ),
}

# Voting that is not an election: a post, a contest, a shareholder meeting.
_OTHER_VOTING = _rx(
    r"""\b(?:reddit|forum|blog|instagram|facebook|tiktok|linkedin|youtube)\b
      | \b(?:this|that|my|your|his|her|their)\s+(?:post|comment|thread|answer|question|video|photo|
          song|pull\s+request|issue|proposal|idea)\b
      | \b(?:up|down)vot\w* | \bsurvey\b | \bcontest\b | \bcompetition\b | \beurovision\b
      | \bx\s+factor\b | \bidol\b | \btalent\s+show\b | \boscars?\b | \bgrammys?\b | \bawards?\b
      | \b(?:share|stock)holders?\b | \bboard\s+(?:meeting|of\s+directors)\b | \bannual\s+meeting\b
      | \bproxy\s+statement\b | \b(?:trade|labou?r)\s+union\b | \bunion\s+(?:vote|election|ballot)\b
      | \bhoa\b | \bhomeowners\b | \bcommittee\b | \bclub\b | \bjury\b | \bstudent\s+council\b
      | \bclass\s+president\b | \bprom\b | \bpoll\s+(?:on|in)\s+(?:the\s+)?(?:app|slack|discord|
          teams|chat|group)\b"""
)
# A writing or analysis task about elections is political talk, whoever asks.
_WRITING = _rx(
    r"""\b(?:write|draft|compose|generate)\b(?:\s+[\w'’-]+){0,4}?\s+(?:essay|article|poem|story|
          speech|op-?ed|blog|paper|report|summary|thread|script|letter\s+to\s+the\s+editor)\b
      | \b(?:essay|op-?ed|poem|thesis|dissertation)\b"""
)
# Talk about elections rather than taking part in one; it yields to a personal question.
_DISCUSSION = _rx(
    r"""\b(?:history|historical|histories|origins?|invented|introduced|evolution|argue|arguments?|
          opinion|opinions|position|positions|stance|stances|views?\s+on|debate|debates|
          controvers\w*|pros\s+and\s+cons|advantages|disadvantages|studies|research|statistics|
          turnout|analy[sz]\w*|compare|comparison|impact|effects?|fraud|rigged|supreme\s+court|
          legislat\w*|candidates?|senators?|congress\w*|parliament\w*|party['’]s|campaign\w*|
          why|think|thinks|believe|believes|support|supports|oppose|opposes)\b"""
)
_PERSONAL = _rx(r"\b(?:i|i['’]m|i['’]ve|i['’]d|me|my|mine|we|our|us)\b")
_ASKING = _rx(
    r"""\?|^\s*(?:how|where|when|what|which|who|can|could|do|does|did|is|are|am|should|may|must|
          will|would)\b|\b(?:tell|show|help|remind)\s+me\b|\bi\s+(?:need|want|would\s+like)\s+to\s+
          (?:know|find|register|vote)\b|\b(?:find|look\s+up|check)\s+(?:my|where|when|if|whether)\b
      | \bwhere\s+to\s+vote\b | \bhow\s+to\s+(?:vote|register)\b"""
)
# A response telling the reader how to vote: second person, or poll hours.
_DIRECTIVE = _rx(
    r"""\byou(?:['’]ll|\s+will|\s+can|\s+may|\s+must|\s+need|\s+should|\s+have\s+to|['’]re\s+required|
          \s+are\s+required)\b
      | \bpolls?\s+(?:open|close|are\s+open)\s+(?:at|from|until)\b"""
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


class ElectionsOptions(DetectorOptions):
    responses: bool = Field(
        default=True,
        description="Also report responses that tell the reader how, where or when to vote.",
    )


@detector("elections")
class ElectionsDetector(Detector):
    """Voting-procedure questions (prompts) and directives (responses); not political talk."""

    version = "1"
    deterministic = True
    Options: ClassVar[type[DetectorOptions]] = ElectionsOptions
    options: ElectionsOptions
    # A procedure question is benign: low severity, whose band the policy maps to `redirect`.
    question_score: ClassVar[float] = 0.9
    directive_score: ClassVar[float] = 0.7
    severity: ClassVar[int] = 2

    def detect(self, sample: Sample) -> list[Finding]:
        if sample.kind == "response" and not self.options.responses:
            return []
        best: Finding | None = None
        for view in sample.normalised.views():
            for finding in self._view_findings(view, sample.kind == "response"):
                if best is None or finding.score > best.score:
                    best = finding
        return [] if best is None else [best]

    def _view_findings(self, view: View, response: bool) -> Iterator[Finding]:
        for folded, text in ((False, view.text), (True, view.folded)):
            if folded and text == view.text:
                continue
            for match in _SENTENCE.finditer(text):
                sentence = match.group()
                topic = next((n for n, p in _TOPICS.items() if p.search(sentence)), None)
                if topic is None or _OTHER_VOTING.search(sentence) or _WRITING.search(sentence):
                    continue
                personal = bool(_PERSONAL.search(sentence))
                if _DISCUSSION.search(sentence) and not personal:
                    continue
                if response:
                    if not _DIRECTIVE.search(sentence):
                        continue
                    label, score = f"procedure-directive:{topic}", self.directive_score
                else:
                    if not _ASKING.search(sentence):
                        continue
                    label, score = f"procedure-question:{topic}", self.question_score
                yield self.finding(
                    "elections",
                    score,
                    severity=self.severity,
                    source=view.source,
                    span=view.span(match.start(), match.end(), folded=folded),
                    evidence=" ".join(sentence.split())[:200],
                    label=label,
                )
