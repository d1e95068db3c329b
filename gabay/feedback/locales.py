"""The fixed wording of feedback emails and of the offline feedback, per language.

English and Tagalog (``tl``; ``fil`` is Filipino, the same strings) are written out; any other
language falls back to English for these strings (a language model still writes the personal
feedback in the submission's language when one is configured).
"""

from __future__ import annotations

from typing import Final

LANGUAGE_NAMES: Final = {
    "en": "English", "tl": "Tagalog (Filipino)", "fil": "Filipino (Tagalog)", "es": "Spanish",
    "fr": "French", "de": "German", "id": "Indonesian", "ms": "Malay", "vi": "Vietnamese",
    "ceb": "Cebuano", "ilo": "Ilocano", "zh": "Chinese", "ja": "Japanese", "ko": "Korean",
}

EN: Final = {
    "subject": "Your feedback for {title}: {score}",
    "greeting": "Hi {name},",
    "intro": "Here is your feedback for {title} ({subject}).",
    "your_score": "Your score",
    "pending": "{points} more point(s) will be added after your teacher reviews {count} open answer(s).",
    "strengths": "What went well",
    "notes": "Notes on your answers",
    "next_steps": "Next steps",
    "question": "Question {number}",
    "your_answer": "Your answer",
    "correct_answer": "Correct answer",
    "no_answer": "(no answer)",
    "right": "Right",
    "wrong": "Not quite",
    "open": "Open answer: your teacher will review it",
    "answers": "Your answers",
    # The footer says what replying does: Reply-To is the teacher when the submission names one.
    "footer": ("This email was sent to {email} about {title}. Replies to this address do not reach "
               "your teacher: ask your questions in class or on the platform."),
    "footer_reply": ("This email was sent to {email} about {title}. Reply to this email to write to "
                     "your teacher, {teacher}."),
    # Offline feedback
    "summary_full": "Excellent work, {name}! You answered every graded question of {title} correctly.",
    "summary_high": "Well done, {name}! You got {right} of {graded} questions right on {title}.",
    "summary_mid": ("Good effort, {name}. You got {right} of {graded} questions right on {title}; "
                    "the notes below show how to close the gaps."),
    "summary_low": ("Thank you for completing {title}, {name}. This one was hard: you got {right} of "
                    "{graded} right. The notes below explain each answer so that the next try goes better."),
    "summary_open": "Thank you, {name}! Your teacher will review your answers to {title}.",
    "strength_right": "You answered correctly: {question}",
    "strength_all_answered": "You answered every question.",
    "strength_effort": "You finished the whole quiz: a good start to build on.",
    "note_wrong": ("You answered \u201c{answer}\u201d; the correct answer is \u201c{correct}\u201d. "
                   "Review this idea and compare the two answers."),
    "note_blank": "You left this one blank; the correct answer is \u201c{correct}\u201d.",
    "note_open": ("Your teacher will review this answer and add the points. Check that it answers the "
                  "whole question and uses the key terms of {subject}."),
    "step_review": "Review the question(s) you missed: {numbers}.",
    "step_reread": "Re-read your {subject} notes on these topics, then try the quiz again.",
    "step_stretch": "Try more challenging questions about {title} to keep building on this.",
    "step_open": "Look out for your teacher's comments on your written answer.",
}

TL: Final = {
    "subject": "Ang iyong feedback sa {title}: {score}",
    "greeting": "Kumusta, {name}!",
    "intro": "Narito ang iyong feedback sa {title} ({subject}).",
    "your_score": "Ang iyong iskor",
    "pending": ("May {points} pang puntos na idadagdag matapos suriin ng iyong guro ang {count} "
                "bukas na sagot."),
    "strengths": "Mga nagawa mong mahusay",
    "notes": "Mga tala sa iyong mga sagot",
    "next_steps": "Mga susunod na hakbang",
    "question": "Tanong {number}",
    "your_answer": "Ang iyong sagot",
    "correct_answer": "Tamang sagot",
    "no_answer": "(walang sagot)",
    "right": "Tama",
    "wrong": "Mali",
    "open": "Bukas na sagot: susuriin ito ng iyong guro",
    "answers": "Ang iyong mga sagot",
    "footer": ("Ipinadala ang email na ito sa {email} tungkol sa {title}. Hindi makakarating sa iyong "
               "guro ang sagot sa address na ito: magtanong sa klase o sa platform."),
    "footer_reply": ("Ipinadala ang email na ito sa {email} tungkol sa {title}. Sumagot sa email na ito "
                     "para makasulat sa iyong guro, si {teacher}."),
    "summary_full": "Napakahusay, {name}! Tama ang lahat ng iyong sagot sa {title}.",
    "summary_high": "Magaling, {name}! Tama ang {right} sa {graded} tanong sa {title}.",
    "summary_mid": ("Magandang pagsisikap, {name}. Tama ang {right} sa {graded} tanong sa {title}; "
                    "ipinapakita ng mga tala sa ibaba kung paano ka pa gagaling."),
    "summary_low": ("Salamat sa pagsagot sa {title}, {name}. Mahirap ang pagsusulit na ito: tama ang "
                    "{right} sa {graded}. Ipinapaliwanag ng mga tala sa ibaba ang bawat sagot para mas "
                    "gumaling ka sa susunod."),
    "summary_open": "Salamat, {name}! Susuriin ng iyong guro ang iyong mga sagot sa {title}.",
    "strength_right": "Tama ang sagot mo sa: {question}",
    "strength_all_answered": "Sinagot mo ang lahat ng tanong.",
    "strength_effort": "Natapos mo ang buong pagsusulit: magandang simula iyan.",
    "note_wrong": ("Ang sagot mo ay \u201c{answer}\u201d; ang tamang sagot ay \u201c{correct}\u201d. "
                   "Balikan ang araling ito at ihambing ang dalawang sagot."),
    "note_blank": "Wala kang sagot dito; ang tamang sagot ay \u201c{correct}\u201d.",
    "note_open": ("Susuriin ng iyong guro ang sagot na ito at ibibigay ang puntos. Tiyaking sinasagot "
                  "nito ang buong tanong at ginagamit ang mahahalagang termino sa {subject}."),
    "step_review": "Balikan ang mga tanong na hindi mo nakuha: {numbers}.",
    "step_reread": ("Basahin muli ang iyong mga tala sa {subject} tungkol sa mga paksang ito, saka "
                    "subukan muli ang pagsusulit."),
    "step_stretch": "Sumubok ng mas mahihirap na tanong tungkol sa {title} para lalo ka pang humusay.",
    "step_open": "Abangan ang mga puna ng iyong guro sa iyong nakasulat na sagot.",
}

_TEXTS: Final = {"en": EN, "tl": TL, "fil": TL}


def texts_for(language_code: str) -> dict[str, str]:
    """The strings for ``language_code`` (``en``, ``tl``, ``fil``), English for any other."""
    return dict(_TEXTS.get(language_code.lower(), EN))


def language_name(language_code: str) -> str:
    """``tl`` -> ``Tagalog (Filipino)``; an unknown code is returned as it is."""
    return LANGUAGE_NAMES.get(language_code.lower(), language_code)
