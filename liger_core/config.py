"""One typed configuration for every stage.

Precedence (lowest to highest): schema defaults < ``configs/<profile>.yaml`` <
environment ``LIGER__SECTION__KEY=value`` < CLI ``--set section.key=value``.
Unknown keys and wrong types fail fast with a message that names the key, because a
typo in a nightly job's config should never silently fall back to a default.
"""

from __future__ import annotations

import codecs
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from liger_core.errors import ConfigError
from liger_core.secrets import SecretUriField, redact_uri

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "LIGER__"


def env_name(dotted: str) -> str:
    """The environment variable that sets ``section.key`` (``load_settings`` reads it back)."""
    return ENV_PREFIX + dotted.strip().upper().replace(".", "__")


def _dotted_key(name: str) -> str:
    return name[len(ENV_PREFIX) :].lower().replace("__", ".")


# A registered model version ("3") or alias ("champion"); `--set ...=3` parses as an int.
ModelRef = Annotated[str, BeforeValidator(lambda value: str(value) if isinstance(value, int) else value)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    """Relative paths resolve against ``home`` (default: the project root)."""

    home: str = str(PROJECT_ROOT)
    warehouse: str = "var/warehouse"
    state: str = "var"

    def resolve(self, path: str) -> str:
        """Absolute form of ``path``; URIs such as ``s3a://`` are returned unchanged."""
        if "://" in path or path.startswith("file:"):
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (Path(self.home) / p).resolve())

    @property
    def warehouse_uri(self) -> str:
        return self.resolve(self.warehouse)

    @property
    def state_dir(self) -> str:
        return self.resolve(self.state)


class SparkConfig(_Section):
    master: str = "local[*]"
    app_name: str = "liger"
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(4, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)


class TrackingConfig(_Section):
    """MLflow; ``uri`` None means a SQLite store under the state folder. A secret: a server
    URI can carry credentials, and it prints redacted. ``artifact_root``: where a new
    experiment keeps its artifacts; None means the state folder's ``mlartifacts`` for a
    database store (MLflow's own default there is ``./mlruns`` of whatever folder the process
    happens to run in) and the server's default for an MLflow server."""

    uri: SecretUriField | None = None
    experiment: str = "liger"
    artifact_root: str | None = None


TEXT_FIELDS = ("title", "brand", "categories", "price", "description")  # item text, in rendering order
ITEM_FIELD_NAMES = ("item_id", *TEXT_FIELDS)
EVENT_FIELD_NAMES = ("user_id", "item_id", "timestamp")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


class SourceConfig(_Section):
    """Where raw data comes from.

    ``tabular``: events + items files under ``path``: TSV/CSV (optionally gzipped) or Parquet
    by extension, or any extension with ``file_format`` / ``delimiter`` set (RecBole's
    ``.inter``: ``file_format: delimited``, ``delimiter: tab``). ``event_columns`` and
    ``item_columns`` map the pipeline's field names to the file's column names.
    ``mcauley``: Amazon 2014 ``reviews_<category>_5.json.gz`` / ``meta_<category>.json.gz``
    in ``download_dir``, downloaded from ``mcauley_base_url`` when missing.
    ``auto``: tabular when the events file exists under ``path``, else mcauley (logged).
    """

    format: Literal["auto", "tabular", "mcauley"] = "auto"
    path: str = "../shared/datasets/amazon_beauty_2014_5core"
    events_file: str = "interactions.tsv"
    items_file: str = "items_with_categories.tsv"
    item_columns: dict[str, str] = Field(default_factory=lambda: {"title": "title_clean"})
    event_columns: dict[str, str] = Field(default_factory=dict)  # user_id / item_id / timestamp -> column
    file_format: Literal["auto", "delimited", "parquet"] = "auto"  # auto: from the file extension
    delimiter: Annotated[str | None, BeforeValidator(lambda v: DELIMITER_NAMES.get(v, v))] = None  # auto: by extension
    category: str = "Beauty"
    mcauley_base_url: str = "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
    download_dir: str = "var/raw"
    kcore: int = Field(0, ge=0)
    min_ts: str = "1995-01-01"
    max_ts: str | None = None
    max_field_chars: int = Field(20_000, ge=1)
    fallback_encoding: str | None = "cp1252"  # for lines that are not UTF-8; None: quarantine them
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"  # of numeric timestamps
    max_quarantine_rate: float = Field(0.2, ge=0, le=1)  # defective rows per table, else the run fails

    @field_validator("fallback_encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding '{value}'") from None
        return value

    @field_validator("item_columns", "event_columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str], info) -> dict[str, str]:
        allowed = ITEM_FIELD_NAMES if info.field_name == "item_columns" else EVENT_FIELD_NAMES
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; allowed: {list(allowed)}")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"a delimiter is one character or one of {sorted(DELIMITER_NAMES)}; got {value!r}")
        return value


class EmbeddingConfig(_Section):
    """``model`` = 'default' (offline all-MiniLM-L6-v2) or any sentence-transformers name/path."""

    model: str = "default"
    batch_size: int = Field(64, ge=1)
    partitions: int = Field(0, ge=0)  # 0: one per Spark core
    device: str = "cpu"
    # auto: bfloat16 autocast where the hardware has it natively (AMX or AVX-512 BF16 CPUs, CUDA), else float32
    precision: Literal["auto", "float32", "bfloat16"] = "auto"


class RQVAEConfig(_Section):
    hidden_dims: list[int] = Field(default_factory=lambda: [512, 256])
    latent_dim: int = Field(128, ge=1)
    levels: int = Field(3, ge=1)
    codebook_size: int = Field(256, ge=2)
    beta: float = Field(0.25, ge=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    batch_size: int = Field(1024, ge=1)
    epochs: int = Field(200, ge=1)
    kmeans_iters: int = Field(25, ge=1)
    reseed_every: int = Field(10, ge=1)  # epochs between dead-code re-seeding
    eval_every: int = Field(20, ge=1)  # epochs between logged quality metrics
    seed: int = 42
    device: str = "cpu"


class SemanticIdConfig(_Section):
    """``rqvae_model``: registry version number or alias used by nightly assignment."""

    rqvae_model: ModelRef = "champion"
    max_collisions: int = Field(256, ge=1)  # size of the 4th (collision) code's vocabulary


class ModelConfig(_Section):
    """LIGER encoder-decoder (DESIGN §5). ``mode``: tiger (codes only), dense, liger (both)."""

    mode: Literal["tiger", "dense", "liger"] = "liger"
    d_model: int = Field(128, ge=8)
    heads: int = Field(4, ge=1)
    encoder_layers: int = Field(6, ge=1)
    decoder_layers: int = Field(6, ge=1)
    ff_dim: int = Field(1024, ge=8)
    dropout: float = Field(0.2, ge=0, lt=1)
    max_history: int = Field(20, ge=2)  # items per sequence (the protocol truncates to 20)
    temperature: float = Field(0.07, gt=0)
    w_sid: float = Field(1.0, ge=0)
    w_dense: float = Field(1.0, ge=0)
    item_ids: bool = False  # add a learned vector per in-set item to its text (0 for cold items)


MODE_METHOD = {"tiger": "generative", "dense": "dense", "liger": "hybrid"}


def ranking_metric(mode: str, configured: str | None) -> str:
    """The metric that early stopping and the promotion gate watch: the configured one, or
    NDCG@10 on validation of the retrieval method the mode serves with."""
    return configured or f"val_{MODE_METHOD[mode]}_ndcg@10"


class TrainConfig(_Section):
    """``batch_size``: training targets per step (whole user sequences under ``causal``)."""

    batch_size: int = Field(256, ge=1)
    max_steps: int = Field(200_000, ge=1)
    max_epochs: float = Field(0, ge=0)  # 0: no cap; else at most this many passes over the training targets
    time_budget_minutes: float = Field(0, ge=0)  # 0: no wall-clock budget
    lr: float = Field(3e-4, gt=0)
    warmup_fraction: float = Field(0.05, ge=0, le=0.05)  # of the run, by steps or time budget
    objective: Literal["causal", "prefix"] = "causal"  # loss at every position, or last only
    dense_negatives: int = Field(0, ge=0)  # 0: dense softmax over every in-set item
    weight_decay: float = Field(0.035, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    eval_every: int = Field(1_000, ge=1)
    checkpoint_every: int = Field(1_000, ge=1)
    early_stop_metric: str | None = None  # default: val_<mode's method>_ndcg@10 (see ranking_metric)
    patience: int = Field(10, ge=1)  # evaluations without improvement before stopping
    beams: int = Field(20, ge=1)
    cold_candidates: int = Field(512, ge=1)  # hybrid: nearest cold items added per user
    cold_weight: float | None = Field(0.02, ge=0, le=1)  # least cold-start share of the blend objective; null: by users
    eval_users: int = Field(4096, ge=0)  # fixed validation subset per evaluation; 0: all
    eval_batch_size: int = Field(128, ge=1)  # users per beam search batch (x beams rows)
    log_every: int = Field(100, ge=1)  # steps between logged training losses
    seed: int = 42
    device: str = "cpu"
    processes: int = Field(1, ge=1)  # >1: torch DDP launched by Spark's TorchDistributor
    mixed_precision: bool = True  # bf16 autocast, used on CUDA only


class EvaluateConfig(_Section):
    """Offline evaluation on the test split, and the promotion gate on the validation split."""

    model: ModelRef = "challenger"  # recommender version or alias to evaluate
    beam_sweep: list[int] = Field(default_factory=lambda: [20, 40, 60, 80, 100], min_length=1)
    beam_width: int = Field(100, ge=1)  # test pass: one search this wide, each K takes its best K (the gate: recommend.beams)
    users: int = Field(0, ge=0)  # 0: every test user; else a fixed random subset
    gate_metric: str | None = None  # default: val_<mode's method>_ndcg@10 (see ranking_metric)
    gate_tolerance: float = Field(0.0, ge=0)  # allowed drop vs champion (absolute)
    # The gate also requires beating the 3-item transition count on the same users; only
    # tests on toy catalogs, where counting is near perfect, turn this off.
    baseline_floor: bool = True


class RecommendConfig(_Section):
    model: ModelRef = "champion"  # recommender version or alias used for serving
    k: int = Field(20, ge=1)
    beams: int = Field(20, ge=1)
    exclude_history: bool = True
    batch_users: int = Field(64, ge=1)  # users per forward pass: fastest in benchmarks/serving_peer.py
    # Transformer blocks of serving and evaluation: auto = bfloat16 autocast where the hardware
    # has it natively (scores stay float32; benchmarks/README.md, serving precision)
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    partitions: int = Field(0, ge=0)  # 0: one per Spark core


class PublishConfig(_Section):
    postgres_dsn: SecretUriField | None = None  # export recommendations/ds=… to PostgreSQL when set; prints redacted


class Settings(_Section):
    profile: str = "cpu"
    paths: PathsConfig = PathsConfig()
    spark: SparkConfig = SparkConfig()
    tracking: TrackingConfig = TrackingConfig()
    source: SourceConfig = SourceConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    rqvae: RQVAEConfig = RQVAEConfig()
    semantic_ids: SemanticIdConfig = SemanticIdConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    recommend: RecommendConfig = RecommendConfig()
    publish: PublishConfig = PublishConfig()

    @property
    def tracking_uri(self) -> str:
        """The real URI, for connecting; ``tracking_uri_shown`` is the one to print."""
        if self.tracking.uri is not None:
            return self.tracking.uri.get_secret_value()
        return f"sqlite:///{self.paths.state_dir}/mlflow.db"

    @property
    def tracking_uri_shown(self) -> str:
        return redact_uri(self.tracking_uri)

    def flat(self) -> dict[str, Any]:
        """Dotted key -> value, for MLflow params (secrets redacted)."""
        return _flatten(self.model_dump(mode="json"))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like section.key=value")
    key, raw = item.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def profile_path(profile: str) -> Path:
    """A profile is a name in ``configs/`` (package data ``liger_core.configs``, so a wheel
    install finds it too) or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in {".yaml", ".yml"}:
        return candidate
    return Path(str(resources.files("liger_core.configs"))) / f"{profile}.yaml"


def load_settings(
    profile: str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the configuration; raises ConfigError naming the offending key."""
    environ = os.environ if environ is None else environ
    profile = profile or environ.get("LIGER_PROFILE", "cpu")
    path = profile_path(profile)
    if not path.is_file():
        raise ConfigError(f"profile '{profile}': no such file {path}")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    tree.setdefault("profile", profile)  # as given, so Airflow tasks can load the same file
    for name, raw in sorted(environ.items()):
        if name.startswith(ENV_PREFIX):
            _set_dotted(tree, _dotted_key(name), yaml.safe_load(raw) if raw else "")
    for item in overrides:
        _set_dotted(tree, *_parse_override(item))
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: " + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({path.name}): {problems}") from None
