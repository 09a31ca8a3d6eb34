"""Split thresholds read from tree models, in the units of the data's columns.

scikit-learn: a tree, forest, bagging or gradient-boosting model, XGBoost or LightGBM (native
boosters or their scikit-learn estimators) and CatBoost (symmetric trees, when installed),
alone or as the last step of a Pipeline; a
threshold on a feature the preprocessing made from one numeric column (a scaler) is carried
back to that column's units through the preprocessing itself, which must be affine in it.
Categorical splits are left out; other families give none. ONNX: every
`TreeEnsemble*` node of domain `ai.onnx.ml` whose input is the graph's own inputs (through
Cast, Identity or Concat)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Threshold:
    column: str
    raw: float
    """Where the split falls in the column's own units."""
    tree: int
    backend: str
    node: str = ""
    """The ONNX node holding the tree."""
    transformed: float | None = None
    """The split as the tree holds it, when preprocessing stands between (a scaler)."""
    shared: int = 1
    """How many splits of the model fall at this value."""

    def describe(self) -> str:
        more = f" and {self.shared - 1} more" if self.shared > 1 else ""
        node = f" ({self.node})" if self.node else ""
        scaled = (
            f", transformed split {self.transformed:.9g}" if self.transformed is not None else ""
        )
        return (
            f"{self.column} at split threshold {self.raw:.9g} of tree {self.tree}{more} of "
            f"{self.backend}{node}{scaled}"
        )


def model_thresholds(
    estimator: Any, base: pd.DataFrame, spans: dict[str, tuple[float, float]], backend: str
) -> tuple[list[Threshold], int]:
    """Thresholds of the model's trees on numeric columns, and how many splits could not be
    carried back to one (a one-hot feature, a non-affine transform). `base`: the typical row;
    `spans`: each numeric column's observed range."""
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    trees = list(_sklearn_trees(final))
    if not trees:
        return [], 0
    if not steps or len(steps) == 1:
        names = _feature_names(final, [str(c) for c in base.columns])
        found = [
            Threshold(names[f], float(t), i, backend)
            for i, features, values in trees
            for f, t in zip(features, values, strict=True)
            if 0 <= f < len(names) and names[f] in spans
        ]
        return found, 0
    affine = _affine_columns(estimator[:-1], base, spans)
    found, unmapped = [], 0
    for i, features, values in trees:
        for f, t in zip(features, values, strict=True):
            if f not in affine:
                unmapped += 1
                continue
            column, a, fa, slope = affine[f]
            raw = a + (float(t) - fa) / slope
            if np.isfinite(raw):
                found.append(Threshold(column, float(raw), i, backend, transformed=float(t)))
    return found, unmapped


def _feature_names(final: Any, columns: list[str]) -> list[str]:
    """The columns a model's feature indices stand for: the names it was fitted on, unless
    they are generated ones (`f0`, `Column_0`: fitted on arrays), then the data's own."""
    fitted = getattr(final, "feature_names_in_", None)
    if fitted is None:
        booster = _booster(final)
        if _family(final) == "catboost":
            fitted = final.feature_names_
        elif booster is not None and hasattr(booster, "get_dump"):
            fitted = booster.feature_names
        elif booster is not None and hasattr(booster, "feature_name"):
            fitted = booster.feature_name()
    names = [str(n) for n in fitted] if fitted is not None else []
    generated = all(n in (f"f{i}", f"Column_{i}", str(i)) for i, n in enumerate(names))
    return columns if generated else names


def _booster(final: Any) -> Any:
    """XGBoost's or LightGBM's booster: the model itself, or its scikit-learn estimator's."""
    if _family(final) not in ("xgboost", "lightgbm"):
        return None
    if hasattr(final, "get_booster"):
        return final.get_booster()
    return getattr(final, "booster_", final)


def _family(final: Any) -> str:
    return type(final).__module__.partition(".")[0]


def _sklearn_trees(final: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(tree index, feature of each split, its threshold), leaves left out."""
    if _family(final) == "catboost":
        yield from _catboost_trees(final)
        return
    booster = _booster(final)
    if booster is not None and hasattr(booster, "get_dump"):
        yield from _xgboost_trees(booster)
        return
    if booster is not None and hasattr(booster, "dump_model"):
        yield from _lightgbm_trees(booster)
        return
    if hasattr(final, "tree_"):
        yield _split_nodes(0, final.tree_)
        return
    estimators = getattr(final, "estimators_", None)
    if estimators is not None:
        flat = np.ravel(np.asarray(estimators, dtype=object))
        for index, tree in enumerate(flat):
            if hasattr(tree, "tree_"):
                yield _split_nodes(index, tree.tree_)
        return
    predictors = getattr(final, "_predictors", None)  # HistGradientBoosting*
    for index, predictor in enumerate(itertools.chain.from_iterable(predictors or [])):
        nodes = predictor.nodes
        split = ~nodes["is_leaf"].astype(bool) & ~nodes["is_categorical"].astype(bool)
        yield index, nodes["feature_idx"][split], nodes["num_threshold"][split]


def _xgboost_trees(booster: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """XGBoost sends `x < split_condition` left, in float32: the dump prints each condition
    with the digits that give that float32 back."""
    import json

    names = booster.feature_names
    index_of = {str(n): i for i, n in enumerate(names or [])}
    for number, text in enumerate(booster.get_dump(dump_format="json")):
        features, values = [], []
        stack = [json.loads(text)]
        while stack:
            node = stack.pop()
            stack.extend(node.get("children", []))
            condition = node.get("split_condition")
            if "split" not in node or not isinstance(condition, int | float):
                continue  # a leaf, or a categorical split
            name = str(node["split"])
            feature = index_of.get(name)
            if feature is None and name.startswith("f") and name[1:].isdigit():
                feature = int(name[1:])
            if feature is not None:
                features.append(feature)
                values.append(float(np.float32(condition)))
        yield number, np.array(features, dtype=int), np.array(values, dtype=np.float64)


def _lightgbm_trees(booster: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """LightGBM sends `x <= threshold` left, a float64 threshold."""
    for tree in booster.dump_model()["tree_info"]:
        features, values = [], []
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            stack.extend(node[side] for side in ("left_child", "right_child") if side in node)
            if node.get("decision_type") == "<=" and "split_feature" in node:
                features.append(int(node["split_feature"]))
                values.append(float(node["threshold"]))
        yield int(tree["tree_index"]), np.array(features, dtype=int), np.array(values)


def _catboost_trees(model: Any) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """CatBoost sends `x > border` right, in float32; its JSON dump holds each symmetric
    tree's splits (other grow policies store none there: they give no threshold)."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save_model(str(path), format="json")
        dump = json.loads(path.read_text())
    floats = dump.get("features_info", {}).get("float_features", [])
    flat = {f["feature_index"]: f["flat_feature_index"] for f in floats}
    for number, tree in enumerate(dump.get("oblivious_trees", [])):
        splits = [
            (flat[s["float_feature_index"]], float(np.float32(s["border"])))
            for s in tree.get("splits", [])
            if s.get("split_type") == "FloatFeature" and s.get("float_feature_index") in flat
        ]
        features = np.array([f for f, _ in splits], dtype=int)
        yield number, features, np.array([v for _, v in splits], dtype=np.float64)


def _split_nodes(index: int, tree: Any) -> tuple[int, np.ndarray, np.ndarray]:
    split = tree.feature >= 0
    return index, tree.feature[split], tree.threshold[split]


def _affine_columns(
    preprocess: Any, base: pd.DataFrame, spans: dict[str, tuple[float, float]]
) -> dict[int, tuple[str, float, float, float]]:
    """Each transformed feature made from one numeric column, affinely:
    feature -> (column, a, value at a, slope)."""
    import pandas as pd

    probes, owners = [], []
    for column, (lo, hi) in spans.items():
        a, b = (lo, hi) if hi > lo else (lo - 1.0, lo + 1.0)
        for value in (a, b, (a + b) / 2):
            row = base.copy()
            row[column] = value
            probes.append(row)
        owners.append((column, a, b))
    if not probes:
        return {}
    try:
        transformed = _dense(preprocess.transform(pd.concat([base, *probes], ignore_index=True)))
    except Exception:
        return {}  # a preprocessing that refuses these probes maps nothing
    origin = transformed[0]
    moved_by: dict[int, list[int]] = {}
    for k in range(len(owners)):
        moved = np.flatnonzero(np.any(transformed[1 + 3 * k : 4 + 3 * k] != origin, axis=0))
        for index in moved:
            moved_by.setdefault(int(index), []).append(k)
    affine: dict[int, tuple[str, float, float, float]] = {}
    for feature, ks in moved_by.items():
        if len(ks) != 1:
            continue
        (k,) = ks
        column, a, b = owners[k]
        fa, fb, fm = transformed[1 + 3 * k : 4 + 3 * k, feature]
        slope = (fb - fa) / (b - a)
        if slope != 0 and np.isclose(fm, (fa + fb) / 2, rtol=1e-9, atol=1e-12):
            affine[feature] = (column, a, float(fa), float(slope))
    return affine


def _dense(values: Any) -> np.ndarray:
    values = values.toarray() if hasattr(values, "toarray") else values
    return np.asarray(values, dtype=np.float64)


TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")


def onnx_thresholds(path: Path, columns_of: dict[str, list[str]], backend: str) -> list[Threshold]:
    """Thresholds of every TreeEnsemble node fed by the graph's inputs; `columns_of`: the
    data columns each graph input takes, in order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {out: node for node in graph.node for out in node.output}
    found = []
    for number, node in enumerate(graph.node):
        if node.domain != "ai.onnx.ml" or node.op_type not in TREE_OPS:
            continue
        columns = _input_columns(node.input[0], producers, columns_of)
        if columns is None:
            continue
        attrs = {a.name: a for a in node.attribute}
        features = list(attrs["nodes_featureids"].ints) if "nodes_featureids" in attrs else []
        if "nodes_values" in attrs:
            values = np.array(attrs["nodes_values"].floats, dtype=np.float64)
        elif "nodes_values_as_tensor" in attrs:
            values = numpy_helper.to_array(attrs["nodes_values_as_tensor"].t).astype(np.float64)
        elif "nodes_splits" in attrs:  # ai.onnx.ml 5's TreeEnsemble: every node splits
            values = numpy_helper.to_array(attrs["nodes_splits"].t).astype(np.float64)
        else:
            continue
        modes = [m.decode() for m in attrs["nodes_modes"].strings] if "nodes_modes" in attrs else []
        trees = list(attrs["nodes_treeids"].ints) if "nodes_treeids" in attrs else []
        name = node.name or f"node {number}"
        for i, (feature, value) in enumerate(zip(features, values, strict=False)):
            if (modes and i < len(modes) and modes[i] == "LEAF") or not 0 <= feature < len(columns):
                continue
            tree = trees[i] if i < len(trees) else -1
            found.append(
                Threshold(columns[feature], float(value), tree, backend, f"{node.op_type} {name}")
            )
    return found


def _input_columns(
    name: str, producers: dict[str, Any], columns_of: dict[str, list[str]]
) -> list[str] | None:
    if name in columns_of:
        return columns_of[name]
    node = producers.get(name)
    if node is None:
        return None
    if node.op_type in ("Cast", "Identity"):
        return _input_columns(node.input[0], producers, columns_of)
    if node.op_type == "Concat":
        parts = [_input_columns(i, producers, columns_of) for i in node.input]
        if all(p is not None for p in parts):
            return [c for p in parts if p is not None for c in p]
    return None
