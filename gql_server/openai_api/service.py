"""The OpenAI-compatible API's rules: which models a caller may use, and starting an answer.

A completion is an answer like sendMessage's: the same access policy (models/repository.py
`get_readable_model`, gql_server/access/policy.py), the same one-answer-at-a-time rule and
the same GenerationManager (retrieval, prompt, provider, citations: chat/generation.py), with
the request's messages as the history. With `store` (the default) the conversation, the
question and the answer are stored as an ended chat session of the caller; without it,
nothing is written: the answer exists only in the response.

Services never commit: the caller's transaction does; the job is submitted after the commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.chat import repository as chat_repository
from gql_server.chat.generation import HISTORY_MESSAGES, AnswerListener, GenerationJob, abandoned_before
from gql_server.chat.service import AUTO_TITLE_CHARACTERS, validate_content
from gql_server.db.base import utcnow
from gql_server.db.models import ChatSession, MessageRole, MessageStatus, RagModel, User
from gql_server.exceptions import GenerationInProgressError, NotFoundError
from gql_server.models import repository as models_repository
from gql_server.models.repository import ModelOrder
from gql_server.openai_api import repository
from gql_server.openai_api.request import CompletionRequest
from gql_server.quotas import service as quota_service
from gql_server.state import AppState

# GET /v1/models lists at most this many models (no paging in OpenAI's list).
MAX_LISTED_MODELS = 1000
MODEL_NOT_FOUND = "Model not found."


@dataclass(frozen=True)
class StartedCompletion:
    job: GenerationJob
    model: RagModel
    chat_session_id: uuid.UUID | None
    created: int


async def usable_models(session: AsyncSession, user: User) -> Sequence[RagModel]:
    rows, _ = await models_repository.list_readable_models(
        session,
        user,
        search=None,
        provider=None,
        order=ModelOrder.NAME_ASC,
        limit=MAX_LISTED_MODELS,
        offset=0,
    )
    return rows


async def usable_model(session: AsyncSession, user: User, model: str) -> RagModel:
    """The model by id, if the user may use it; NotFoundError alike for unknown and forbidden."""
    try:
        model_id = uuid.UUID(model)
    except ValueError:
        raise NotFoundError(MODEL_NOT_FOUND) from None
    row = await models_repository.get_readable_model(session, user, model_id)
    if row is None:
        raise NotFoundError(MODEL_NOT_FOUND)
    return row


def _title(question: str) -> str:
    first_line = " ".join(question.split())
    if len(first_line) <= AUTO_TITLE_CHARACTERS:
        return first_line
    return first_line[: AUTO_TITLE_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"


async def _check_no_generation(session: AsyncSession, state: AppState, user: User) -> None:
    # Under the user's row lock, across every API process (and this process's unstored answers).
    await chat_repository.lock_user(session, user.id)
    running = await chat_repository.generation_in_flight(session, user.id, abandoned_before(state.settings))
    if running is not None:
        raise GenerationInProgressError(running.id)
    if state.generation.is_generating_for(user.id):
        raise GenerationInProgressError(uuid.uuid4())


def _store(
    session: AsyncSession, chat_session: ChatSession, request: CompletionRequest
) -> tuple[uuid.UUID, uuid.UUID]:
    """The conversation, the question and a PENDING answer, in order; (question id, answer id)."""
    now = utcnow()
    step = timedelta(microseconds=1)
    turns = request.history[-HISTORY_MESSAGES:]
    for index, turn in enumerate(turns):
        chat_repository.add_message(
            session,
            chat_session,
            MessageRole.USER if turn.role == "user" else MessageRole.ASSISTANT,
            turn.content,
            MessageStatus.COMPLETE,
            created_at=now + index * step,
        )
    question = chat_repository.add_message(
        session,
        chat_session,
        MessageRole.USER,
        request.question,
        MessageStatus.COMPLETE,
        created_at=now + len(turns) * step,
    )
    answer = chat_repository.add_message(
        session,
        chat_session,
        MessageRole.ASSISTANT,
        "",
        MessageStatus.PENDING,
        created_at=now + (len(turns) + 1) * step,
    )
    return question.id, answer.id


async def start_completion(
    state: AppState, user: User, request: CompletionRequest, listener: AnswerListener
) -> StartedCompletion:
    """Check and (with store) write everything, commit, then submit the answer: a refused
    request (unknown model, too long, an answer in flight, a used-up quota) leaves nothing
    behind."""
    validate_content(request.question)
    chat_session_id: uuid.UUID | None = None
    async with state.sessionmaker.begin() as session:
        model = await usable_model(session, user, request.model)
        await _check_no_generation(session, state, user)
        # The same usage quota as sendMessage: a message counted, or UsageQuotaExceededError.
        await quota_service.reserve_message(session, state.settings, user.id, model.id)
        if request.store:
            now = utcnow()
            chat_session = await repository.create_ended_session(
                session, user.id, model.id, _title(request.question), now
            )
            question_id, answer_id = _store(session, chat_session, request)
            await session.flush()
            chat_session_id = chat_session.id
    if chat_session_id is None:
        # Nothing stored: ids no row has (retrieval's attachment filter matches nothing).
        question_id, answer_id, session_ref = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    else:
        session_ref = chat_session_id
    job = GenerationJob(
        message_id=answer_id,
        question_message_id=question_id,
        chat_session_id=session_ref,
        user_id=user.id,
        model_id=model.id,
        question=request.question,
        history=request.history,
        persist=request.store,
    )
    state.generation.submit(job, listener)
    return StartedCompletion(job, model, chat_session_id, int(time.time()))
