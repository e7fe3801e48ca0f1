"""Starting a training or a fine-tune from the Train page: now, or in the server's queue.

When no job runs (and none waits) the job starts at once
(:func:`nuclei_core.jobs.start_training`); otherwise it waits its turn in the server's
:class:`~nuclei_core.jobs.waiting.TrainingQueue` (:func:`training_queue`, one per server
process), and the page lists the jobs waiting, with their place and a Cancel for their
owner or an operator. Session-state keys: ``train_last_run_id`` (the run started from
this session), ``train_waiting_ticket`` (its place in the queue while it waits).
"""

from __future__ import annotations

import streamlit as st

from nuclei_core import jobs
from nuclei_core.access.users import User
from nuclei_core.errors import JobBusyError
from nuclei_core.jobs.waiting import TrainingQueue
from nuclei_core.registry import Registry
from ui import messages
from ui.wording import plain


@st.cache_resource(show_spinner=False)
def training_queue(registry_path: str) -> TrainingQueue:
    """The server's queue of training jobs waiting for the running one to end."""
    return TrainingQueue(Registry(registry_path))


def start_or_queue(config, registry: Registry, user: User) -> None:
    """Start ``config`` now or queue it; say which after the rerun (errors go to the page)."""
    queue = training_queue(str(registry.path))
    if not queue.waiting():
        try:
            run = jobs.start_training(config, registry, owner=user.owner)
        except JobBusyError:
            pass  # another job runs: wait for it below
        else:
            st.session_state["train_last_run_id"] = run.id
            st.rerun()
    item = queue.add(config, user.owner, config.name)
    st.session_state["train_waiting_ticket"] = item.ticket
    messages.flash(
        f"{plain(item.name)} waits for its turn (place {queue.place(item.ticket)}); it "
        "starts by itself when the running job ends."
    )
    st.rerun()


def _cancel(registry_path: str, ticket: int, name: str) -> None:
    if training_queue(registry_path).cancel(ticket):
        messages.flash(f"{plain(name)} left the queue; it will not start.")


def show_waiting(registry: Registry, user: User) -> None:
    """The jobs waiting on this server, and what became of this session's."""
    queue = training_queue(str(registry.path))
    ticket = st.session_state.get("train_waiting_ticket")
    ended = queue.ended(ticket) if ticket is not None else None
    if ended is not None:
        st.session_state.pop("train_waiting_ticket", None)
        if ended.run_id is not None:
            st.session_state["train_last_run_id"] = ended.run_id
        else:
            st.error(f"{plain(ended.name)} could not start: {plain(ended.error or '')}")
    waiting = queue.waiting()
    if not waiting:
        return
    st.caption(f"Waiting for their turn on this server: {len(waiting)}")
    for place, item in enumerate(waiting, start=1):
        text, button = st.columns([4, 1], vertical_alignment="center")
        owner = f" · {plain(item.owner)}" if item.owner else ""
        text.write(f"{place}. {plain(item.name)}{owner}")
        allowed = user.operator or (item.owner is not None and item.owner == user.owner)
        button.button(
            "Cancel",
            key=f"train_cancel_{item.ticket}",
            disabled=not allowed,
            on_click=_cancel,
            args=(str(registry.path), item.ticket, item.name),
            help=None if allowed else "Only the person who queued it, or an operator.",
        )
