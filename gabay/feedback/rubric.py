"""The feedback rubric: what every email's words must do before the email is sent, checked in code.

Problems name criteria, numbers and fixed words only, never the feedback's own text (which may
name the student): they go to the job record and the logs.

Five criteria, each a function returning the problems it finds (empty: met):

- ``strength``: it names a real strength: a right answer by its question or answer when there is
  one (not "good job"), and it never praises as right what was not;
- ``anchored``: every note on a wrong answer quotes (or nearly) the student's answer and the
  correct one; a note on a blank answer gives the correct one;
- ``actionable``: every next step says what to do (an action verb: review, re-read, practise, ...;
  English and Tagalog; other languages are not checked and say so);
- ``tone``: no harsh words, no shouting (words in capitals, more than three "!"), and praise that
  fits the score ("excellent" is not for 1 of 5, "you missed" is not for 5 of 5);
- ``consistent``: every count, score and percentage it states is the computed one, every
  "question N" exists, and it claims "all right" only when all are.

:func:`check_rubric` runs them all. The writer (:mod:`gabay.feedback.writer`) regenerates once
with the problems when a model's feedback fails, then falls back to the offline writer, whose
feedback passes by construction (tested on every sample submission).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gabay.feedback.model import Feedback
from gabay.feedback.scoring import Outcome, QuestionFact, Score, fmt_points, normalize
from gabay.feedback.submission import Submission

#: Share of a quoted answer's words a note must contain to count as quoting it.
QUOTE_SHARE = 0.6
MAX_EXCLAMATIONS = 3

_ACTION_VERBS = {
    "en": ("review", "re-read", "reread", "read", "practise", "practice", "try", "compare", "write",
           "look", "ask", "revise", "study", "check", "redo", "explain", "make", "draw", "list", "go over",
           "summarise", "summarize", "test yourself", "use", "learn", "watch", "memorise", "memorize"),
    "tl": ("balikan", "basahin", "sumubok", "subukan", "abangan", "sanayin", "magsanay", "isulat",
           "ihambing", "magtanong", "aralin", "pag-aralan", "ulitin", "tingnan", "gumawa", "suriin"),
}
_ACTION_VERBS["fil"] = _ACTION_VERBS["tl"]
_HARSH = {
    "en": ("stupid", "lazy", "careless", "terrible", "awful", "pathetic", "failure", "you failed",
           "hopeless", "dumb", "idiot", "useless", "poor effort", "disappointing", "shameful", "bad student"),
    "tl": ("bobo", "tamad", "tanga", "walang kwenta", "nakakahiya", "palpak"),
}
_HARSH["fil"] = _HARSH["tl"]
_TOP_PRAISE = ("excellent", "perfect", "outstanding", "flawless", "napakahusay", "perpekto")
_ALL_RIGHT_CLAIMS = ("every question correctly", "all questions correctly", "all correct",
                     "every answer right", "tama ang lahat")
_MISSED = ("you missed", "you got wrong", "were wrong", "hindi mo nakuha", "mali ang")
_RIGHT_WORDS = ("correct", "right", "tama")
_QUESTION_REF = re.compile(r"\b(?:question|tanong)\s+(\d+)\b", re.IGNORECASE)
_COUNT = re.compile(r"\b(\d+)\s+(?:of|out of|sa)\s+(\d+)\b", re.IGNORECASE)
_PERCENT = re.compile(r"\b(\d{1,3})\s?%")
_POINTS = re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\b")


@dataclass(frozen=True)
class RubricResult:
    """The problems found, per criterion (no key: met), and the criteria that could not be checked."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line for a regeneration prompt or a job record: ``criterion: problem; ...``."""
        return "; ".join(f"{name}: {problem}" for name, found in self.problems.items() for problem in found)

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "problems": self.problems, "unchecked": self.unchecked}


def check_rubric(feedback: Feedback, submission: Submission, score: Score) -> RubricResult:
    """Every criterion on ``feedback`` for this submission and its computed score."""
    language = submission.language_code
    found = {
        "strength": strength(feedback, score),
        "anchored": anchored(feedback, score),
        "actionable": actionable(feedback, language),
        "tone": tone(feedback, score, language),
        "consistent": consistent(feedback, score),
    }
    unchecked = [] if language in _ACTION_VERBS else [f"actionable and tone words ({language})"]
    return RubricResult({name: problems for name, problems in found.items() if problems}, unchecked)


def _texts(feedback: Feedback) -> list[str]:
    return [feedback.summary, *feedback.strengths, *(n.note for n in feedback.notes), *feedback.next_steps]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", normalize(text)) if len(w) >= 3}


def quotes(text: str, quoted: str) -> bool:
    """``text`` contains ``quoted``, or most of its words (an answer may be shortened or rephrased)."""
    if not normalize(quoted):
        return True
    if normalize(quoted) in normalize(text):
        return True
    words = _words(quoted)
    return bool(words) and len(words & _words(text)) / len(words) >= QUOTE_SHARE


def strength(feedback: Feedback, score: Score) -> list[str]:
    if not feedback.strengths:
        return ["no strength is named"]
    if score.right and not any(_names(item, fact) for item in feedback.strengths for fact in score.right):
        return ["no strength names a question the student got right"]
    if not score.right:
        praised = [s for s in feedback.strengths if any(w in normalize(s).split() for w in _RIGHT_WORDS)]
        if praised:
            return ["praises an answer as right when none is"]
    return []


def _names(item: str, fact: QuestionFact) -> bool:
    number = re.search(rf"\b(?:question|tanong)\s+{fact.number}\b", item, flags=re.IGNORECASE)
    return bool(number) or quotes(item, fact.question) or (
        bool(normalize(fact.answer)) and normalize(fact.answer) in normalize(item) and len(fact.answer) > 3)


def anchored(feedback: Feedback, score: Score) -> list[str]:
    problems = []
    for fact in score.wrong:
        note = feedback.note_for(fact.question_id) or ""
        if fact.answer.strip() and not quotes(note, fact.answer):
            problems.append(f"the note on question {fact.number} does not quote the student's answer")
        if not quotes(note, fact.correct_answer or ""):
            problems.append(f"the note on question {fact.number} does not give the correct answer")
    return problems


def actionable(feedback: Feedback, language: str) -> list[str]:
    verbs = _ACTION_VERBS.get(language)
    if verbs is None:
        return []
    return [f"next step {number} says no action to take" for number, step in enumerate(feedback.next_steps, 1)
            if not any(re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", step, re.IGNORECASE) for v in verbs)]


def tone(feedback: Feedback, score: Score, language: str) -> list[str]:
    problems = []
    text = " ".join(_texts(feedback))
    lowered = normalize(text)
    harsh = [w for w in _HARSH.get(language, _HARSH["en"]) if re.search(rf"\b{re.escape(w)}\b", lowered)]
    if harsh:
        problems.append(f"harsh wording {harsh[0]!r}")
    shouting = [w for w in re.findall(r"\b[A-Z]{4,}\b", text) if not _allowed_capitals(w, score)]
    if shouting:
        problems.append(f"shouting ({len(shouting)} word(s) in capitals)")
    if text.count("!") > MAX_EXCLAMATIONS:
        problems.append(f"{text.count('!')} exclamation marks")
    graded = len(score.right) + len(score.wrong)
    share = len(score.right) / graded if graded else None
    if share is not None and share < 0.5 and any(w in lowered for w in _TOP_PRAISE):
        problems.append("top praise for a score under half")
    if share == 1 and any(w in lowered for w in _MISSED):
        problems.append("speaks of missed answers when every answer is right")
    return problems


def _allowed_capitals(word: str, score: Score) -> bool:
    """Acronyms the quiz itself uses (ATP, NADPH) are not shouting."""
    return any(word in f"{f.question} {f.answer} {f.correct_answer or ''}" for f in score.facts)


def consistent(feedback: Feedback, score: Score) -> list[str]:
    return _numbers(" ".join(_texts(feedback)), score) + _claims(feedback, score)


def _numbers(text: str, score: Score) -> list[str]:
    """Counts, percentages, points and question numbers the text states, against the score."""
    problems = []
    graded = len(score.right) + len(score.wrong)
    for got, total in _COUNT.findall(text):
        if int(total) in (graded, len(score.facts)) and int(got) != len(score.right):
            problems.append(f"says {got} of {total} right, the score is {len(score.right)} of {graded}")
    for percent in _PERCENT.findall(text):
        if score.percent is None or int(percent) != score.percent:
            problems.append(f"says {percent}%, the score is {score.percent}%")
    for earned, possible in _POINTS.findall(text):
        if float(possible) == score.possible and float(earned) != score.earned:
            problems.append(f"says {earned} / {possible}, the score is {fmt_points(score.earned)} / "
                            f"{fmt_points(score.possible)}")
    for number in _QUESTION_REF.findall(text):
        if not 1 <= int(number) <= len(score.facts):
            problems.append(f"names question {number}, the quiz has {len(score.facts)}")
    return problems


def _claims(feedback: Feedback, score: Score) -> list[str]:
    """"All right" only when all are; no points promised for an open answer."""
    problems = []
    lowered = normalize(" ".join(_texts(feedback)))
    if score.wrong and any(claim in lowered for claim in _ALL_RIGHT_CLAIMS):
        problems.append("claims every answer right")
    for fact in score.facts:
        if fact.outcome is Outcome.OPEN and re.search(r"\b\d+(?:\.\d+)? ?(?:points?|puntos)\b",
                                                      feedback.note_for(fact.question_id) or "", re.I):
            problems.append(f"gives points to open question {fact.number}")
    return problems
