"""Reply-To is the teacher the submission names, and the footer says what replying does."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import redis

from gabay.feedback.email import render_feedback_email
from gabay.feedback.offline.writer import offline_feedback
from gabay.feedback.pipeline import FeedbackContext, process
from gabay.feedback.scoring import score
from gabay.feedback.submission import parse_submission
from gabay.mail.brevo import request_body
from gabay.mail.render import RenderedEmail
from gabay.settings import load_settings
from tests.fakes import brevo_server
from tests.fakes.brevo_server import FakeBrevo
from tests.support.feedback_samples import sample


def rendered(data: dict) -> RenderedEmail:
    submission = parse_submission(data)
    facts = score(submission)
    settings = load_settings(email_sender="no-reply@school.example", email_sender_name="Gabay")
    return render_feedback_email(settings, submission, facts, offline_feedback(submission, facts))


def without_teacher() -> dict:
    data = sample("mixed-score")
    data.pop("teacher")
    return data


def test_replies_go_to_the_teacher_and_the_footer_says_so() -> None:
    message = rendered(sample("mixed-score"))

    assert message.reply_to is not None and message.reply_to.email == "reyes@school.example"
    assert request_body(message, "key")["replyTo"] == {"email": "reyes@school.example", "name": "Ms. Reyes"}
    footer = "Reply to this email to write to your teacher, Ms. Reyes."
    assert footer in message.text and footer in message.html


def test_without_a_teacher_there_is_no_reply_to_and_the_footer_does_not_promise_one() -> None:
    message = rendered(without_teacher())

    assert message.reply_to is None and "replyTo" not in request_body(message, "key")
    assert "Replies to this address do not reach your teacher" in message.text
    assert "Reply to this email" not in message.text


def test_the_tagalog_footer_matches_too() -> None:
    message = rendered(sample("tagalog"))
    assert "Sumagot sa email na ito para makasulat sa iyong guro, si Ms. Reyes." in message.text


def test_brevo_receives_the_reply_to_and_the_outbox_file_has_the_header(
        redis_client: redis.Redis, tmp_path: Path, brevo: FakeBrevo) -> None:
    settings = load_settings(email_outbox_dir=tmp_path / "outbox", brevo_timeout=2,
                             brevo_api_key=brevo.api_key, brevo_base_url=brevo.base_url)
    process(FeedbackContext.build(settings, redis_client), sample("mixed-score"))
    assert brevo.accepted[0]["replyTo"] == {"email": "reyes@school.example", "name": "Ms. Reyes"}

    offline = load_settings(email_outbox_dir=tmp_path / "outbox")
    result = process(FeedbackContext.build(offline, redis_client), sample("tagalog"))
    parsed = email.message_from_bytes(Path(result["outbox_path"]).read_bytes(), policy=email.policy.default)
    assert parsed["Reply-To"].addresses[0].addr_spec == "reyes@school.example"


def test_the_fake_brevo_refuses_a_reply_to_without_a_valid_address() -> None:
    assert brevo_server.check_body({"sender": {"email": "a@b.example"}, "replyTo": {"email": "nope"}}) == {
        "code": "invalid_parameter", "message": "replyTo email is not valid"}
