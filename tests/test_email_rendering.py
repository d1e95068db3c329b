"""Feedback emails: hostile text is shown as text, both bodies agree, the MIME is well formed."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from gabay.feedback.email import render_feedback_email
from gabay.feedback.model import Feedback, QuestionNote
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.mail.render import RenderedEmail, template_environment, to_mime
from gabay.settings import Settings, load_settings
from tests.support.feedback_samples import HOSTILE_TEXT, SAMPLE_NAMES, hostile, sample


@pytest.fixture
def mail_settings() -> Settings:
    return load_settings(email_sender="feedback@school.example", email_sender_name="Gabay Feedback")


def render(settings: Settings, data: dict, feedback: Feedback | None = None) -> RenderedEmail:
    submission = parse_submission(data)
    facts = score(submission)
    return render_feedback_email(settings, submission, facts, feedback or offline_feedback(submission, facts))


def test_html_and_jinja_in_names_answers_and_titles_are_shown_as_text(mail_settings: Settings) -> None:
    message = render(mail_settings, hostile())

    assert "<script" not in message.html and "<img" not in message.html and "<b>bold" not in message.html
    assert "&lt;script&gt;alert('x')&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in message.html
    assert "&lt;img src=x onerror=alert(1)&gt; {{ config }} Eve" in message.html
    assert "{{ 7*7 }} {% if true %}yes{% endif %} &amp;amp;" in message.html
    assert "Quiz {% raw %}&lt;i&gt;" in message.html
    assert "49" not in message.html
    assert HOSTILE_TEXT in message.text
    assert "<img src=x onerror=alert(1)> {{ config }} Eve" in message.text
    assert message.subject.startswith("Your feedback for Quiz {% raw %}<i>: ")


def test_feedback_text_is_escaped_too(mail_settings: Settings) -> None:
    submission = parse_submission(sample("mixed-score"))
    evil = Feedback(summary="<a href='http://evil.example'>click</a> {{ 1+1 }}",
                    strengths=["<b>x</b>"], next_steps=["{% for x in y %}"],
                    notes=[QuestionNote(question_id="q1", note="</div><script>1</script>"),
                           QuestionNote(question_id="q4", note="ok")])

    html = render(mail_settings, sample("mixed-score"), evil).html

    assert "&lt;a href='http://evil.example'&gt;click&lt;/a&gt; {{ 1+1 }}" in html
    assert "&lt;/div&gt;&lt;script&gt;1&lt;/script&gt;" in html
    assert "<script" not in html and "<a " not in html
    assert submission.student.name in html


def test_autoescape_is_on_for_html_templates_only() -> None:
    env = template_environment()
    assert env is template_environment()  # one environment
    assert env.autoescape("feedback.html") is True  # type: ignore[operator]
    assert env.autoescape("feedback.txt") is False  # type: ignore[operator]
    names = {n for n in env.list_templates() if not n.startswith("_")}  # "_": parts, not emails
    assert {n.rsplit(".", 1)[0] for n in names if n.endswith(".html")} == \
        {n.rsplit(".", 1)[0] for n in names if n.endswith(".txt")}


def test_the_html_is_readable_on_a_phone_with_inlined_css(mail_settings: Settings) -> None:
    html = render(mail_settings, sample("mixed-score")).html

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:600px" in html
    assert "<style" not in html  # inlined: many mail clients drop <style>
    assert 'style="' in html


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_both_bodies_carry_the_score_and_every_question(mail_settings: Settings, name: str) -> None:
    data = sample(name)
    message = render(mail_settings, data)
    facts = score(parse_submission(data))

    assert facts.label in message.subject
    for body in (message.html, message.text):
        assert facts.label in body
        for answer in data["answers"]:
            assert answer["question"] in body
    assert message.to.email == data["student"]["email"]
    assert (message.sender.email, message.sender.name) == ("feedback@school.example", "Gabay Feedback")


def test_the_tagalog_sample_gets_tagalog_wording(mail_settings: Settings) -> None:
    message = render(mail_settings, sample("tagalog"))

    assert message.subject == "Ang iyong feedback sa Photosynthesis Quiz: 3 / 5 (60%)"
    assert "Kumusta, Juan Bautista!" in message.text and "Tamang sagot: Oxygen" in message.text
    assert 'lang="tl"' in message.html


def test_open_answers_are_announced_as_pending(mail_settings: Settings) -> None:
    message = render(mail_settings, sample("with-open-question"))
    assert "2 more point(s) will be added after your teacher reviews 1 open answer(s)." in message.text


def test_the_mime_message_is_multipart_alternative_and_parses_back(mail_settings: Settings) -> None:
    message = render(mail_settings, hostile(response_id="r-\u00f1"))
    raw = to_mime(message, message_id="<abc@school.example>").as_bytes(policy=email.policy.SMTP)

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["To"].addresses[0].addr_spec == "jose.delacruz@student.example"
    assert parsed["To"].addresses[0].display_name == message.to.display_name
    assert parsed["From"].addresses[0].addr_spec == "feedback@school.example"
    assert parsed["Subject"] == message.subject
    assert parsed["Message-ID"] == "<abc@school.example>"
    text_part = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content().replace("\r\n", "\n") == message.text
    assert "&lt;script&gt;" in html_part.get_content()
