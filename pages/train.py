"""Train page: start, watch and stop a training job; switch, upload, rename, delete models.

"Your corrected images" lists the user datasets saved on the Segment page and
fine-tunes the session's model on one of them (``ui.user_datasets``).

Training runs in its own process (``nuclei_core.jobs``), so a reload or a second
tab finds it still running; only one job runs at a time, the others wait in the
server's queue (``ui.training_start``).  The form's fields keep
their values while a job runs (``ui.state.kept``).  "Use in this session" switches
this browser session's model; "Make it the default" sets the model new sessions
start with.  Session-state keys: ``train_last_run_id`` (the run started from this
session), ``models_choice``, ``train_*`` (the form), ``finetune_*`` (the fine-tune form).
"""

import streamlit as st

from nuclei_core import jobs
from nuclei_core.access.users import may_change, may_see, visible_runs
from nuclei_core.evaluation.evaluate import check_dataset_folder
from nuclei_core.registry import ACTIVE_STATUSES, catalogue
from nuclei_core.registry.history import history_frame
from nuclei_core.sharing import zoo_import
from nuclei_core.training import TrainConfig
from ui import (
    charts,
    messages,
    model_files,
    navigation,
    progress,
    signin,
    state,
    training_start,
    uploads,
    user_datasets,
    wording,
)

navigation.ensure_app_shell(__file__)
st.title("Train or load a model")
registry = state.registry()
access = signin.current_access()
user = signin.current_user(access)
messages.show_flash()


def request_stop(run_id: int) -> None:
    """The Stop button's callback: runs before the fragment redraws, so it shows at once."""
    with messages.engine_errors():
        jobs.stop_training(run_id, registry)


@st.fragment(run_every=2)
def training_monitor(run_id: int) -> None:
    """Progress, a Stop button and live curves, refreshed every 2 seconds."""
    with messages.engine_errors():
        status = jobs.job_status(run_id, registry)
        if status.get("status") not in ACTIVE_STATUSES:
            st.rerun(scope="app")
        run = registry.get_run(run_id)
        st.subheader(f"Training {wording.plain(run.name)}")
        fraction, text = progress.job_progress(status)
        st.progress(fraction, text=text)
        stopping = bool(status.get("stop_requested"))
        allowed = may_change(user, run)
        st.button(
            "Stopping…" if stopping else "Stop training",
            key="train_stop",
            type="primary",
            disabled=stopping or not allowed,
            on_click=request_stop,
            args=(run_id,),
            help=None if allowed else "Only the person who started it, or an operator, stops it.",
        )
        if stopping:
            st.info(progress.STOPPING_TEXT)
        elif status.get("message"):
            st.caption(status["message"])
        history = history_frame(registry, [run])
        if history.empty:
            st.caption("Curves appear after the first epoch.")
        else:
            columns = st.columns(3)
            for column, metric in zip(columns, ("loss", "accuracy", "iou"), strict=True):
                column.altair_chart(charts.curves_chart(history, metric), key=f"live_{metric}")


def use_in_session(run_id: int, name: str) -> None:
    state.use_model(registry, run_id)
    messages.flash(f"This session now uses {wording.plain(name)}.")


def make_default(run_id: int, name: str) -> None:
    """Operators only: the default is every user's, so it is shared (its owner cleared)."""
    if not user.operator:
        return
    registry.update_run(run_id, owner=None)
    registry.set_active_model(run_id)
    messages.flash(f"{wording.plain(name)} is now the model new sessions start with.")


st.header("Train a model")
job = jobs.running_job(registry)
if job is not None:
    training_monitor(job.id)
else:
    last = catalogue.latest_training_run(registry)
    outcome = messages.training_outcome(last) if last and may_see(user, last) else None
    if outcome is not None:
        kind, text = outcome
        getattr(st, kind)(text)
        current = state.session_model(registry)
        if kind == "success" and (current is None or current.id != last.id):
            st.button(
                f"Use {wording.plain(last.name)} in this session",
                key="train_activate",
                type="primary",
                on_click=use_in_session,
                args=(last.id, last.name),
            )


training_start.show_waiting(registry, user)
with st.form("train_form"):
    data = state.kept(st.text_input, "Dataset folder", key="train_data", default="sample_images")
    st.caption(wording.TRAINING_DATA_NOTE)
    name = state.kept(st.text_input, "Run name", key="train_name", default="my-unet")
    architecture = state.kept(
        st.selectbox,
        "Architecture",
        key="train_architecture",
        default="unet",
        options=list(wording.ARCHITECTURE_LABELS),
        format_func=wording.architecture_label,
    )
    first, second, third, fourth = st.columns(4)
    epochs = state.kept(
        first.number_input, "Epochs", key="train_epochs", default=20,
        min_value=1, max_value=1000,
    )  # fmt: skip
    budget = state.kept(
        second.number_input,
        "Time budget (minutes, 0 = none)",
        key="train_time_budget",
        default=0,
        min_value=0,
        max_value=10_080,
        step=5,
        help="Training ends when the next epoch would pass this time (0: no limit); "
        "the best epoch so far is kept.",
    )
    batch_size = state.kept(
        third.number_input, "Batch size", key="train_batch_size", default=4,
        min_value=1, max_value=256,
    )  # fmt: skip
    learning_rate = state.kept(
        fourth.number_input, "Learning rate", key="train_learning_rate", default=2e-3,
        min_value=1e-6, max_value=1.0, step=1e-4, format="%.5f",
    )  # fmt: skip
    crop = state.kept(
        first.number_input, "Crop size (pixels)", key="train_crop", default=128,
        min_value=32, max_value=1024, step=32,
    )  # fmt: skip
    patience = state.kept(
        second.number_input, "Early-stopping patience (epochs)", key="train_patience",
        default=5, min_value=1, max_value=200,
    )  # fmt: skip
    val_fraction = state.kept(
        third.number_input, "Validation fraction", key="train_val_fraction", default=0.2,
        min_value=0.05, max_value=0.5, step=0.05, help=wording.SPLIT_HELP,
    )  # fmt: skip
    with st.expander("Network"):
        depth = state.kept(
            st.number_input, "Depth (levels)", key="train_depth", default=4,
            min_value=1, max_value=6,
        )  # fmt: skip
        base_filters = state.kept(
            st.number_input, "Filters of the first level", key="train_base_filters",
            default=16, min_value=2, max_value=128,
        )  # fmt: skip
        distance = state.kept(
            st.checkbox, "Learn a distance map", key="train_distance", default=False,
            help=wording.DISTANCE_HELP,
        )  # fmt: skip
    submitted = st.form_submit_button(
        "Start training" if job is None else "Queue training (starts when the running one ends)",
        type="primary",
    )
if submitted:
    with messages.engine_errors():
        folder = check_dataset_folder(signin.server_path(data))
        config = TrainConfig(
            data=str(folder),
            out="",  # jobs.start_training puts every run in its own folder
            architecture=architecture,
            epochs=int(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            patience=int(patience),
            crop=int(crop),
            val_fraction=float(val_fraction),
            depth=int(depth),
            base_filters=int(base_filters),
            distance=bool(distance),
            time_budget_minutes=float(budget) if budget else None,
            name=name.strip() or None,
        )
        training_start.start_or_queue(config, registry, user)

st.header("Your corrected images")
corrected = user_datasets.show_user_datasets(registry, user)
if corrected:
    user_datasets.finetune_form(registry, corrected, user, busy=job is not None)

st.header("Manage models")
runs = visible_runs(user, catalogue.model_runs(registry))
if not runs:
    st.info("No model is registered yet: train one above or add a `.keras` file below.")
else:
    names = {run.id: wording.run_label(run) for run in runs}
    current = state.session_model(registry)
    if st.session_state.get("models_choice") not in names:
        st.session_state["models_choice"] = (
            current.id if current and current.id in names else runs[0].id
        )
    chosen = registry.get_run(
        st.selectbox("Model", list(names), format_func=names.get, key="models_choice")
    )
    shown_file = chosen.model_path if access.mode == "open" else wording.file_name(chosen)
    st.caption(
        f"{wording.model_caption(chosen)} · {wording.validation_line(chosen) or 'no metrics'}"
        f" · file {wording.plain(shown_file)}"
    )
    allowed = may_change(user, chosen)
    default = registry.active_model()
    columns = st.columns(5)
    columns[0].button(
        "Use in this session",
        key="models_activate",
        disabled=current is not None and current.id == chosen.id,
        on_click=use_in_session,
        args=(chosen.id, chosen.name),
        help="Only this browser session switches; other people keep their model.",
    )
    columns[1].button(
        "Make it the default",
        key="models_default",
        disabled=not user.operator or (default is not None and default.id == chosen.id),
        on_click=make_default,
        args=(chosen.id, chosen.name),
        help="The model every new browser session starts with; open sessions keep theirs."
        + ("" if user.operator else " Only an operator changes it."),
    )
    model_files.show_model_files(chosen, columns[2:4])
    with columns[4].popover(
        "Rename or delete",
        disabled=not allowed,
        help=None if allowed else "Shared models and other people's are read-only to you.",
    ):
        new_name = st.text_input("New name", value=chosen.name, key="models_new_name")
        if st.button("Rename", key="models_rename", disabled=not allowed):
            with messages.engine_errors():
                registry.rename_run(chosen.id, new_name)
                messages.flash(f"Renamed to {wording.plain(new_name.strip())}.")
                st.rerun()
        bundled = catalogue.is_bundled(chosen)
        confirm = st.checkbox(
            "Yes, delete this model",
            key="models_confirm_delete",
            disabled=bundled,
            help="The bundled default model cannot be deleted." if bundled else None,
        )
        if st.button("Delete", key="models_delete", disabled=not confirm or bundled or not allowed):
            with messages.engine_errors():
                removed = catalogue.delete_model(registry, chosen.id)
                state.clear_model_cache()
                gone = wording.plain(chosen.name)
                messages.flash(f"Deleted {gone}" + (" and its files." if removed else "."))
                st.rerun()

st.subheader("Add a model file")
upload = st.file_uploader(
    "Keras 3 model (.keras) or BioImage Model Zoo package (.bioimageio.zip), loaded in safe "
    "mode; unsafe or unfitting files are refused",
    type=uploads.MODEL_TYPES,
    key="models_upload",
)
upload_name = st.text_input("Name (optional)", key="models_upload_name")
activate = st.checkbox("Use it in this session", value=True, key="models_upload_activate")
if st.button("Add this model", key="models_add", disabled=upload is None) and upload is not None:
    with messages.engine_errors():
        package = upload.name.lower().endswith(".zip")
        importer = zoo_import.import_package if package else catalogue.import_model
        added = importer(upload.getvalue(), upload.name, registry, upload_name, user.owner)
        if activate:
            state.use_model(registry, added.id)
        state.clear_model_cache()
        messages.flash(
            f"Added {wording.plain(added.name)}"
            + (" and switched this session to it." if activate else ".")
        )
        st.rerun()
