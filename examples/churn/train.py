"""Model builders for the bundled churn example.

Each builder takes no arguments and returns an *unfitted* scikit-learn
estimator. parityspec fits it on the train split of ``churn.csv`` where X is
the pandas DataFrame of every column except ``churned``.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "churned"
NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "data_usage_gb",
    "age",
]
CATEGORICAL = ["contract", "payment_method", "internet_service", "region"]


def build_preprocess() -> ColumnTransformer:
    """Median-impute + standardise numerics, one-hot encode categoricals."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def build_pipeline() -> Pipeline:
    """Preprocessing + a small MLP (the model that INT8 quantization changes)."""
    return Pipeline(
        [
            ("preprocess", build_preprocess()),
            (
                "classifier",
                # Strong L2 (alpha=1.0) makes adam converge in ~100-160 epochs
                # (< 2 s, no ConvergenceWarning). early_stopping is off: on this
                # imbalanced target its accuracy-based validation can stop at
                # the majority-class baseline.
                MLPClassifier(
                    hidden_layer_sizes=(32, 16),
                    alpha=1.0,
                    max_iter=200,
                    early_stopping=False,
                    random_state=0,
                ),
            ),
        ]
    )


def build_forest_pipeline() -> Pipeline:
    """Preprocessing + a random forest (tree thresholds vs float32 scaling)."""
    return Pipeline(
        [
            ("preprocess", build_preprocess()),
            (
                "classifier",
                RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
            ),
        ]
    )


def build_tree_preprocess() -> ColumnTransformer:
    """For gradient boosting: numerics as they are (gaps stay NaN, which each library sends
    down its learnt missing-value branch), categoricals one-hot encoded."""
    return ColumnTransformer(
        [
            ("numeric", "passthrough", NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def build_xgboost_pipeline() -> Pipeline:
    """Tree preprocessing + XGBoost (`pip install 'parityspec[xgboost]'`)."""
    from xgboost import XGBClassifier

    booster = XGBClassifier(
        n_estimators=200, max_depth=4, learning_rate=0.1, random_state=0, n_jobs=1
    )
    return Pipeline([("preprocess", build_tree_preprocess()), ("classifier", booster)])


def build_xgboost_scaled_pipeline() -> Pipeline:
    """The MLP's preprocessing (median impute, standardise) + the same XGBoost model."""
    pipeline = build_xgboost_pipeline()
    pipeline.steps[0] = ("preprocess", build_preprocess())
    return pipeline


def build_lightgbm_pipeline() -> Pipeline:
    """Tree preprocessing + LightGBM (`pip install 'parityspec[lightgbm]'`)."""
    from lightgbm import LGBMClassifier

    booster = LGBMClassifier(
        n_estimators=200, num_leaves=15, learning_rate=0.05, random_state=0, n_jobs=1, verbose=-1
    )
    return Pipeline([("preprocess", build_tree_preprocess()), ("classifier", booster)])


def build_catboost_pipeline() -> Pipeline:
    """Tree preprocessing + CatBoost (`pip install 'parityspec[catboost]'`)."""
    from catboost import CatBoostClassifier

    booster = CatBoostClassifier(
        iterations=200,
        depth=4,
        learning_rate=0.1,
        random_seed=0,
        thread_count=1,
        verbose=0,
        allow_writing_files=False,  # no catboost_info/ beside the spec
    )
    return Pipeline([("preprocess", build_tree_preprocess()), ("classifier", booster)])


def build_histgb_pipeline() -> Pipeline:
    """Tree preprocessing + scikit-learn's HistGradientBoostingClassifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    booster = HistGradientBoostingClassifier(max_iter=200, random_state=0)
    return Pipeline([("preprocess", build_tree_preprocess()), ("classifier", booster)])
