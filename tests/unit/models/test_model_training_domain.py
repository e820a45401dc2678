"""The input domain a model version records: its training data's when a dataset is linked,
else its input example's (ranges, category sets, columns that never had a missing value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.models.package import read_manifest
from modelpilot.models.signature import InputDomain, Signature
from modelpilot.workspace import Workspace
from mp_domain import imputed_plan_model


def _data(rows: int = 400, seed: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 91, rows),
            "income": rng.normal(50.0, 10.0, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
        }
    )
    return x, ((x["plan"] == "pro") ^ (x["income"] > 50)).astype(int)


def _domain(version_signature: dict[str, object]) -> InputDomain:
    domain = Signature.from_dict(version_signature).domain
    assert domain is not None
    return domain


def test_a_model_logged_with_training_data_records_that_data_s_domain(ws: Workspace) -> None:
    x, y = _data()
    example = x.head(5)
    train = ws.log_dataset(x, "train")
    version = ws.log_model(
        imputed_plan_model(x, y), "churn", input_example=example, datasets=[train]
    )
    domain = _domain(version.signature)
    assert domain.source == train.ref and domain.rows == len(x)
    assert domain.ranges["age"] == (float(x["age"].min()), float(x["age"].max()))
    assert domain.ranges["age"] != (float(example["age"].min()), float(example["age"].max()))
    assert domain.categories["plan"] == {"basic", "pro", "team"}
    assert domain.never_null == {"income", "plan"}  # nullable columns only (age is not)
    loaded = ws.load_model(version.ref)
    assert loaded.signature.domain == domain  # what the data plane reads: the manifest's


def test_without_a_dataset_the_example_s_domain_is_kept(ws: Workspace) -> None:
    x, y = _data()
    version = ws.log_model(imputed_plan_model(x, y), "churn", input_example=x.head(5))
    domain = _domain(version.signature)
    assert domain.source == "input example" and domain.rows == 5
    assert domain.never_null == frozenset()  # five rows prove nothing about missing values


def test_the_reference_dataset_wins_over_training_and_several_merge(ws: Workspace) -> None:
    x, y = _data()
    low, high = x[x["age"] < 50], x[x["age"] >= 50]
    ref_low, ref_high = ws.log_dataset(low, "ref-low"), ws.log_dataset(high, "ref-high")
    other = ws.log_dataset(x.assign(age=x["age"] + 1000), "train")
    version = ws.log_model(
        imputed_plan_model(x, y),
        "churn",
        input_example=x.head(5),
        datasets={"training": other, "reference": [ref_low, ref_high]},
    )
    domain = _domain(version.signature)
    assert domain.source == f"{ref_low.ref}, {ref_high.ref}"
    assert domain.ranges["age"] == (float(x["age"].min()), float(x["age"].max()))


def test_columns_the_dataset_lacks_keep_the_example_s_domain_and_few_rows_prove_no_nulls(
    ws: Workspace,
) -> None:
    x, y = _data()
    small = ws.log_dataset(x[["age", "income"]].head(50), "small")
    version = ws.log_model(
        imputed_plan_model(x, y), "churn", input_example=x.head(5), datasets=[small]
    )
    domain = _domain(version.signature)
    assert domain.categories["plan"] == set(x["plan"].head(5))  # from the example
    assert domain.ranges["age"] == (float(x["age"].head(50).min()), float(x["age"].head(50).max()))
    assert domain.never_null == frozenset()  # 50 rows without nulls are not enough


def test_a_dataset_kept_by_reference_as_csv_gives_the_domain(ws: Workspace, tmp_path: Path) -> None:
    x, y = _data()
    path = tmp_path / "train.csv"
    x.to_csv(path, index=False)
    train = ws.log_dataset(path, "train-csv")
    version = ws.log_model(
        imputed_plan_model(x, y), "churn", input_example=x.head(5), datasets=[train]
    )
    domain = _domain(version.signature)
    assert domain.categories["plan"] == {"basic", "pro", "team"}
    assert domain.ranges["income"] == pytest.approx((x["income"].min(), x["income"].max()))
    assert domain.never_null == {"income", "plan"}


def test_the_domain_is_part_of_the_package_manifest_and_so_of_its_digest(
    ws: Workspace,
) -> None:
    x, y = _data()
    model = imputed_plan_model(x, y)
    train, other = ws.log_dataset(x, "train"), ws.log_dataset(x.head(200), "train")
    first = ws.log_model(model, "churn", input_example=x.head(5), datasets=[train])
    again = ws.log_model(model, "churn", input_example=x.head(5), datasets=[train])
    third = ws.log_model(model, "churn", input_example=x.head(5), datasets=[other])
    manifests = [read_manifest(ws.artifacts, v.package_digest) for v in (first, again, third)]
    assert [m["signature"] for m in manifests] == [v.signature for v in (first, again, third)]
    assert manifests[0]["signature"] == manifests[1]["signature"] != manifests[2]["signature"]
    assert manifests[2]["signature"]["domain"]["source"] == other.ref
