"""`model inspect <version dir>`: the signatures, like `saved_model_cli show --all`, and the
chart values that serve this model (keys of the chart's values.yaml, ``global.model.*``)."""

from __future__ import annotations

import pathlib
import sys

from model_tools.convert import LABELS_OUTPUT, SIGNATURE
from model_tools.tensor_codec import dtype_name


def _shape(tensor_shape) -> str:
    if tensor_shape.unknown_rank:
        return "unknown_rank"
    dims = [d.size for d in tensor_shape.dim]
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def describe_signatures(signature_defs) -> str:
    from tensorflow.core.framework import types_pb2

    lines = ["MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:", ""]
    for key in sorted(signature_defs):
        signature = signature_defs[key]
        lines.append(f"signature_def['{key}']:")
        for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
            lines.append(f"  The given SavedModel SignatureDef contains the following {kind}(s):")
            for alias in sorted(tensors):
                info = tensors[alias]
                lines += [
                    f"    {kind}s['{alias}'] tensor_info:",
                    f"        dtype: {types_pb2.DataType.Name(info.dtype)}",
                    f"        shape: {_shape(info.tensor_shape)}",
                    f"        name: {info.name}",
                ]
        lines += [f"  Method name is: {signature.method_name}", ""]
    return "\n".join(lines)


def image_signature_facts(signature) -> dict:
    """What the gateway will discover: input name/dtype/size, scores output, labels output."""
    ((input_name, info),) = signature.inputs.items() if len(signature.inputs) == 1 else ((None, None),)
    facts = {"input": input_name, "dtype": dtype_name(info.dtype) if info else None}
    if info is not None and not info.tensor_shape.unknown_rank and len(info.tensor_shape.dim) == 4:
        facts["height"], facts["width"] = (info.tensor_shape.dim[1].size, info.tensor_shape.dim[2].size)
    scores = [a for a in signature.outputs if a != LABELS_OUTPUT]
    facts["scores"] = scores[0] if len(scores) == 1 else None
    facts["labels_output"] = LABELS_OUTPUT in signature.outputs
    return facts


def values_snippet(version_dir: pathlib.Path, signature_name: str, facts: dict) -> str:
    name = version_dir.parent.name if version_dir.name.isdigit() else "clothing-model"
    version = int(version_dir.name) if version_dir.name.isdigit() else 1
    labels_file = version_dir / "assets.extra" / "labels.txt"
    labels = (
        [line.strip() for line in labels_file.read_text().splitlines() if line.strip()]
        if labels_file.is_file()
        else []
    )
    if facts["labels_output"]:
        labels_line = "    labels: []  # the model's own `labels` output names the classes"
    elif labels:
        labels_line = "    labels: [" + ", ".join(labels) + "]"
    else:
        labels_line = "    labels: []  # none known: the gateway answers class_<i>"
    if facts["dtype"] == "uint8":
        pre_line = "    preprocessing: xception  # ignored: uint8 input, the graph scales pixels"
    else:
        pre_line = (
            "    preprocessing: xception  # scaling the model was trained with "
            "(xception | resnet50 | vgg16 | inception_v3)"
        )
    return "\n".join(
        [
            "# values for the chart (helm upgrade ... -f this-file or --set global.model.version=N)",
            "global:",
            "  model:",
            f"    name: {name}",
            f"    version: {version}",
            f"    signature: {signature_name}",
            labels_line,
            pre_line,
        ]
    )


def inspect(version_dir: pathlib.Path, signature_name: str = SIGNATURE) -> str:
    from model_tools.servable import read_signature_defs

    if not (version_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{version_dir}: no saved_model.pb (expected <base>/<name>/<version>/)")
    signature_defs = read_signature_defs(version_dir)
    out = [describe_signatures(signature_defs)]
    if signature_name not in signature_defs:
        out.append(f"# no '{signature_name}' signature: the gateway cannot call this model as is")
        return "\n".join(out)
    facts = image_signature_facts(signature_defs[signature_name])
    size = f"{facts.get('width')}x{facts.get('height')}" if "width" in facts else "unknown"
    out.append(
        f"# {signature_name}: image input '{facts['input']}' ({facts['dtype']}, {size}), "
        f"scores output '{facts['scores']}'" + (", labels output 'labels'" if facts["labels_output"] else "")
    )
    out.append("")
    out.append(values_snippet(version_dir, signature_name, facts))
    return "\n".join(out) + "\n"


def add_arguments(parser):
    parser.add_argument("dir", help="SavedModel version directory, e.g. models/clothing-model/1")
    parser.add_argument("--signature", default=SIGNATURE, help="signature the gateway will call")


def run(args) -> int:
    try:
        sys.stdout.write(inspect(pathlib.Path(args.dir), args.signature))
    except (FileNotFoundError, ValueError) as exc:
        print(f"model inspect: {exc}", file=sys.stderr)
        return 2
    return 0
