"""Builders for the specs on scikit-learn's bundled data sets: each returns an unfitted model."""

from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def iris_classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))


def iris_forest():
    return RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1)


def diabetes_regressor():
    return GradientBoostingRegressor(n_estimators=100, random_state=0)
