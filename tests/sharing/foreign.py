"""A BioImage Model Zoo package made elsewhere, for the tests: built from scratch, offline."""

from __future__ import annotations

from pathlib import Path


def one_channel_onnx(path) -> None:
    """A network of one ONNX graph: ``sigmoid(4 x - 2)`` of a ``(N, 1, H, W)`` input, the
    layout (channels first, one channel, no boundary) of many packages made elsewhere."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["raw", "four"], ["scaled"]),
            helper.make_node("Sub", ["scaled", "two"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["prob"]),
        ],
        "foreground",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [
            helper.make_tensor("four", TensorProto.FLOAT, [], [4.0]),
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_foreign_package(folder: Path) -> Path:
    """A package made elsewhere: one-channel input, channels first, ``zero_mean_unit_variance``
    preprocessing, ONNX weights only, one output channel named ``prob``; its network is
    :func:`one_channel_onnx`."""
    import numpy as np
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    one_channel_onnx(folder / "net.onnx")
    raw = np.random.default_rng(0).random((1, 1, 64, 64), np.float32)
    standardised = (raw - raw.mean()) / (raw.std() + 1e-6)
    np.save(folder / "in.npy", raw)
    np.save(folder / "out.npy", (1 / (1 + np.exp(-(4 * standardised - 2)))).astype(np.float32))
    (folder / "README.md").write_text("# A nuclei probability network from another lab\n")
    space = [
        v0_5.SpaceInputAxis(id=axis, size=v0_5.ParameterizedSize(min=16, step=16))
        for axis in ("y", "x")
    ]
    descr = v0_5.ModelDescr(
        name="another lab nuclei",
        description="nuclei probability",
        authors=[v0_5.Author(name="Another Lab")],
        cite=[v0_5.CiteEntry(text="A paper", doi="10.1000/xyz")],
        license="MIT",
        documentation=v0_5.FileDescr(source=folder / "README.md"),
        inputs=[
            v0_5.InputTensorDescr(
                id=v0_5.TensorId("raw"),
                axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=["dapi"]), *space],
                test_tensor=v0_5.FileDescr(source=folder / "in.npy"),
                preprocessing=[
                    v0_5.ZeroMeanUnitVarianceDescr(
                        kwargs=v0_5.ZeroMeanUnitVarianceKwargs(axes=["channel", "y", "x"])
                    )
                ],
            )
        ],
        outputs=[
            v0_5.OutputTensorDescr(
                id=v0_5.TensorId("prob"),
                axes=[
                    v0_5.BatchAxis(),
                    v0_5.ChannelAxis(channel_names=["prob"]),
                    *(
                        v0_5.SpaceOutputAxis(
                            id=axis, size=v0_5.SizeReference(tensor_id="raw", axis_id=axis)
                        )
                        for axis in ("y", "x")
                    ),
                ],
                test_tensor=v0_5.FileDescr(source=folder / "out.npy"),
                data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
            )
        ],
        weights=v0_5.WeightsDescr(
            onnx=v0_5.OnnxWeightsDescr(source=folder / "net.onnx", opset_version=17)
        ),
    )
    return save_bioimageio_package(descr, output_path=folder / "lab.bioimageio.zip")
