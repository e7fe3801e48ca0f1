"""Train page: start, watch and stop a training job; switch, upload, rename, delete models.

Training runs in its own process (``nuclei_core.jobs``), so a reload or a second
tab finds it still running; only one job runs at a time.  Session-state keys:
``train_last_run_id`` (the run started from this session), ``models_choice``.
"""

from pathlib import Path

import streamlit as st

from nuclei_core import catalogue, jobs
from nuclei_core.evaluate import check_dataset_folder
from nuclei_core.history import history_frame
from nuclei_core.registry import ACTIVE_STATUSES
from nuclei_core.training import TrainConfig
from ui import charts, labels, messages, navigation, state, uploads

navigation.ensure_app_shell(__file__)
st.title("Train or load a model")
registry = state.registry()
messages.show_flash()


@st.fragment(run_every=2)
def training_monitor(run_id: int) -> None:
    """Progress, live curves and a Stop button, refreshed every 2 seconds."""
    with messages.engine_errors():
        status = jobs.job_status(run_id, registry)
        if status.get("status") not in ACTIVE_STATUSES:
            st.rerun(scope="app")
        run = registry.get_run(run_id)
        st.subheader(f"Training {run.name}")
        fraction, text = labels.job_progress(status)
        st.progress(fraction, text=text)
        if status.get("message"):
            st.caption(status["message"])
        history = history_frame(registry, [run])
        if history.empty:
            st.caption("Curves appear after the first epoch.")
        else:
            columns = st.columns(3)
            for column, metric in zip(columns, ("loss", "accuracy", "iou"), strict=True):
                column.altair_chart(charts.curves_chart(history, metric), key=f"live_{metric}")
        if st.button("Stop training", key="train_stop", type="primary"):
            jobs.stop_training(run_id, registry)
            st.info("Stopping after the current batch; the best checkpoint is kept.")


def make_active(run_id: int, name: str) -> None:
    registry.set_active_model(run_id)
    messages.flash(f"{name} is now the active model.")


st.header("Train a model")
job = jobs.running_job(registry)
if job is not None:
    training_monitor(job.id)
else:
    last = catalogue.latest_training_run(registry)
    outcome = messages.training_outcome(last)
    if outcome is not None:
        kind, text = outcome
        getattr(st, kind)(text)
        active = registry.active_model()
        if kind == "success" and (active is None or active.id != last.id):
            st.button(
                f"Make {last.name} the active model",
                key="train_activate",
                type="primary",
                on_click=make_active,
                args=(last.id, last.name),
            )

    with st.form("train_form"):
        data = st.text_input("Dataset folder", value="sample_images", key="train_data")
        st.caption(
            "The bundled sample images only show how training works; for a useful model use a "
            "real dataset such as the Data Science Bowl 2018 / BBBC038 `stage1_train` folder."
        )
        name = st.text_input("Run name", value="my-unet", key="train_name")
        architecture = st.selectbox(
            "Architecture",
            list(labels.ARCHITECTURE_LABELS),
            key="train_architecture",
            format_func=labels.architecture_label,
        )
        first, second, third = st.columns(3)
        epochs = first.number_input("Epochs", 1, 1000, 20, key="train_epochs")
        batch_size = second.number_input("Batch size", 1, 256, 4, key="train_batch_size")
        learning_rate = third.number_input(
            "Learning rate", 1e-6, 1.0, 2e-3, 1e-4, format="%.5f", key="train_learning_rate"
        )
        crop = first.number_input("Crop size (pixels)", 32, 1024, 128, 32, key="train_crop")
        patience = second.number_input(
            "Early-stopping patience (epochs)", 1, 200, 5, key="train_patience"
        )
        val_fraction = third.number_input(
            "Validation fraction", 0.05, 0.5, 0.2, 0.05, key="train_val_fraction"
        )
        with st.expander("U-Net size"):
            depth = st.number_input("Depth (levels)", 1, 6, 4, key="train_depth")
            base_filters = st.number_input(
                "Filters of the first level", 2, 128, 16, key="train_base_filters"
            )
        submitted = st.form_submit_button("Start training", type="primary")
    if submitted:
        with messages.engine_errors():
            folder = check_dataset_folder(data)
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
                name=name.strip() or None,
            )
            run = jobs.start_training(config, registry)
            st.session_state["train_last_run_id"] = run.id
            st.rerun()

st.header("Manage models")
runs = catalogue.model_runs(registry)
if not runs:
    st.info("No model is registered yet: train one above or add a `.keras` file below.")
else:
    names = {run.id: labels.run_label(run) for run in runs}
    if st.session_state.get("models_choice") not in names:
        active = registry.active_model()
        st.session_state["models_choice"] = (
            active.id if active and active.id in names else runs[0].id
        )
    chosen = registry.get_run(
        st.selectbox("Model", list(names), format_func=names.get, key="models_choice")
    )
    st.caption(
        f"{labels.model_caption(chosen)} · {labels.validation_line(chosen) or 'no metrics'}"
        f" · file {chosen.model_path}"
    )
    active = registry.active_model()
    columns = st.columns(3)
    columns[0].button(
        "Make active",
        key="models_activate",
        disabled=active is not None and active.id == chosen.id,
        on_click=make_active,
        args=(chosen.id, chosen.name),
    )
    columns[1].download_button(
        "Download .keras",
        lambda: Path(chosen.model_path).read_bytes(),
        file_name=f"{catalogue.slug(chosen.name)}.keras",
        mime="application/zip",
        on_click="ignore",
        key="models_download",
    )
    with columns[2].popover("Rename or delete"):
        new_name = st.text_input("New name", value=chosen.name, key="models_new_name")
        if st.button("Rename", key="models_rename"):
            with messages.engine_errors():
                registry.rename_run(chosen.id, new_name)
                messages.flash(f"Renamed to {new_name.strip()}.")
                st.rerun()
        confirm = st.checkbox("Yes, delete this model", key="models_confirm_delete")
        if st.button("Delete", key="models_delete", disabled=not confirm):
            with messages.engine_errors():
                removed = catalogue.delete_model(registry, chosen.id)
                state.clear_model_cache()
                messages.flash(f"Deleted {chosen.name}" + (" and its files." if removed else "."))
                st.rerun()

st.subheader("Add a model file")
upload = st.file_uploader(
    "Keras 3 model (.keras), loaded in safe mode; unsafe or unfitting files are refused",
    type=uploads.MODEL_TYPES,
    key="models_upload",
)
upload_name = st.text_input("Name (optional)", key="models_upload_name")
activate = st.checkbox("Make it the active model", value=True, key="models_upload_activate")
if st.button("Add this model", key="models_add", disabled=upload is None) and upload is not None:
    with messages.engine_errors():
        added = catalogue.import_model(upload.getvalue(), upload.name, registry, upload_name)
        if activate:
            registry.set_active_model(added.id)
        state.clear_model_cache()
        messages.flash(
            f"Added {added.name}" + (" and made it the active model." if activate else ".")
        )
        st.rerun()
