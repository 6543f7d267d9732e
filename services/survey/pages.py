"""The public answer pages: no login, no JavaScript. A GET only shows (mail scanners follow links); a POST records."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bothways.db import Connection
from bothways.web import Conn
from services.survey import answers, questions, store
from services.survey.answers import AnswerInvalid, LinkProblem
from services.survey.questions import Scale
from services.survey.rendering import render, when
from services.survey.runtime import Survey, SurveyDep

router = APIRouter(tags=["answer pages"], include_in_schema=True)

HEADERS: Final = {
    # The token is in the URL: it must not leak through Referer, caches or frames.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


@router.get("/s/{token}", response_class=HTMLResponse)
async def show_survey(token: str, conn: Conn, survey: SurveyDep, score: str | None = None) -> HTMLResponse:
    """The question with the score from the mail's button pre-selected; nothing is recorded."""
    now = survey.clock()
    try:
        row = await answers.open_invitation(conn, token=token, secrets=survey.settings.token_keys(), now=now)
    except LinkProblem as problem:
        return problem_page(survey, problem)
    selected, error = _preselection(Scale(row["scale"]), score, current=row["score"])
    context = await _form_context(conn, survey, row, selected=selected, error=error)
    return page(survey, "answer.html", 422 if error else 200, **context)


@router.post("/s/{token}", response_class=HTMLResponse)
async def answer_survey(token: str, request: Request, conn: Conn, survey: SurveyDep) -> HTMLResponse:
    """Record (or change) the answer, then thank the person."""
    now = survey.clock()
    form = await _form(request)
    async with conn.transaction():
        try:
            row = await answers.open_invitation(
                conn, token=token, secrets=survey.settings.token_keys(), now=now, for_update=True
            )
        except LinkProblem as problem:
            return problem_page(survey, problem)
        scale = Scale(row["scale"])
        try:
            answer = answers.validate(
                scale=scale,
                reasons=survey.rules.reasons(scale.kind),
                score=form.get("score"),
                reason=form.get("reason"),
                comment=form.get("comment"),
            )
        except AnswerInvalid as invalid:
            context = await _form_context(
                conn, survey, row, selected=_int_or_none(form.get("score")), error=invalid, form=form
            )
            return page(survey, "answer.html", 422, **context)
        row = await answers.record(conn, row=row, answer=answer, rules=survey.rules, now=now)
    return page(
        survey,
        "thanks.html",
        200,
        answer_label=questions.label(scale, answer.score),
        reason=answer.reason,
        low=questions.is_low(scale, answer.score),
        page_url=f"{survey.settings.survey_public_url}/s/{token}",
        expires=when(row["expires_at"], time_zone=survey.settings.survey_time_zone),
    )


def page(survey: Survey, template: str, status: int, **context: Any) -> HTMLResponse:
    """A page with the headers every answer page carries."""
    html = render(template, team=survey.settings.survey_team_name, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def problem_page(survey: Survey, problem: LinkProblem) -> HTMLResponse:
    """The page saying why a link cannot be honoured."""
    return page(survey, "problem.html", problem.status_code, title=problem.title, message=problem.message)


async def _form(request: Request) -> dict[str, str]:
    """The submitted fields as text; anything that is not a form reads as an empty one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        return {}
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # a malformed body is an empty form: the page then says what is missing
        return {}
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _preselection(
    scale: Scale, score: str | None, *, current: int | None
) -> tuple[int | None, AnswerInvalid | None]:
    if score is None:
        return current, None
    number = _int_or_none(score)
    try:
        return questions.validate(scale, number if number is not None else -1), None
    except ValueError:
        return current, AnswerInvalid(
            "score", f"{score!r} is not one of the answers offered; please choose one."
        )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


async def _form_context(
    conn: Connection,
    survey: Survey,
    row: store.Row,
    *,
    selected: int | None,
    error: AnswerInvalid | None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    scale = Scale(row["scale"])
    zone = survey.settings.survey_time_zone
    campaign = await store.campaign(conn, campaign_id=row["campaign_id"]) if row["campaign_id"] else None
    submitted = form or {}
    return {
        "question": campaign["question"] if campaign else survey.rules.csat_question,
        "comment_prompt": campaign["comment_prompt"] if campaign else "Would you like to tell us more?",
        "context_line": _context_line(row),
        "scale": scale.value,
        "choices": questions.choices(scale),
        "selected": selected,
        "reasons": survey.rules.reasons(scale.kind),
        "chosen_reason": submitted.get("reason", row["answer_reason"]),
        "comment": submitted.get("comment", row["comment"]),
        "max_comment": answers.MAX_COMMENT_LENGTH,
        "error": error,
        "answered_at": when(row["answered_at"], time_zone=zone) if row["answered_at"] else None,
        "expires": when(row["expires_at"], time_zone=zone),
    }


def _context_line(row: store.Row) -> str | None:
    if row["kind"] != "csat" or not row["external_id"]:
        return None
    title = f": {row['ticket_title']}" if row["ticket_title"] else ""
    return f"About your request {row['external_id']}{title}"
