"""The legacy databases our users have on disk, built with the exact DDL the apps ran.

See ../shared/reference/legacy-databases.md. ModelForge wrote hand-written SQL; the
inference-autotuner ran SQLAlchemy's ``create_all`` (which never adds columns) and then hand-run
``ALTER TABLE tasks ADD COLUMN`` scripts. Every state is built the way the app reached it, with rows
written at each step in the app's own value formats.

``build(path, *parts)`` writes a file from parts; ``STATES`` names every historical state.
"""
import sqlite3

from modelstore.engine.scripts import discover


# -- ModelForge -------------------------------------------------------------------------------

MODELFORGE_V10 = '''
CREATE TABLE IF NOT EXISTS fine_tuned_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    base_model TEXT NOT NULL,
    task TEXT NOT NULL,
    description TEXT,
    creation_date TEXT NOT NULL,
    model_path TEXT NOT NULL
)'''

MODELFORGE_V11_FRESH = '''
CREATE TABLE IF NOT EXISTS fine_tuned_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    base_model TEXT NOT NULL,
    task TEXT NOT NULL,
    description TEXT,
    creation_date TEXT NOT NULL,
    model_path TEXT NOT NULL,
    is_custom_base_model BOOLEAN DEFAULT 0
)'''

MODELFORGE_V11_ALTER = ('ALTER TABLE fine_tuned_models ADD COLUMN is_custom_base_model '
                        'BOOLEAN DEFAULT 0')

# ModelForge v2 added its own SQLAlchemy table to the same file; modelstore never models it.
MODELFORGE_V2_MODELS = '''
CREATE TABLE models (
  id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, source VARCHAR(50),
  config JSON, created_at DATETIME, PRIMARY KEY (id), UNIQUE (name))'''

# (model_name, base_model, task, description, creation_date, model_path): the app's formats.
# datetime.now().isoformat() drops the fraction when microsecond == 0.
MODELFORGE_ROWS_V10 = [
    ('llama-sum', 'meta-llama/Llama-3.2-1B', 'summarization',
     'Summariser for support tickets (Recommended Model)', '2025-10-30T14:03:11.512345',
     '/home/u/.local/share/ModelForge/models/llama-sum_0c7f1f0e-5a8e-4a53-9d8e-1f0e2a9b7c11'),
    ('qa-bert', 'bert-base-uncased', 'question-answering', '', '2025-10-30T09:00:00',
     '/home/u/.local/share/ModelForge/models/qa-bert_4b1d2c3e-0f9a-4c8b-a7d6-5e4f3a2b1c0d'),
    ('gen-small', 'my-org/base-7b', 'text-generation', 'Fine-tuned on docs (Custom Model)',
     '2025-11-02T23:59:59.000001',
     '/home/u/.local/share/ModelForge/models/gen-small_9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'),
    ('no-desc', 'gpt2', 'extractive-question-answering', None, '2025-11-03T08:15:42.100000',
     '/home/u/.local/share/ModelForge/models/no-desc_11111111-2222-4333-8444-555555555555'),
]
MODELFORGE_ROWS_V11 = [
    ('custom-gen', '/home/u/bases/my-7b', 'text-generation', 'Own base (Custom Model)',
     '2025-11-10T10:10:10.101010',
     '/home/u/.local/share/ModelForge/models/custom-gen_aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
     True),
    ('rec-sum', 'facebook/bart-large-cnn', 'summarization', 'News (Recommended Model)',
     '2025-11-11T07:00:00',
     '/home/u/.local/share/ModelForge/models/rec-sum_12345678-90ab-4cde-8f01-234567890abc',
     False),
]
_MF_INSERT_V10 = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                  'creation_date, model_path) VALUES (?,?,?,?,?,?)')
_MF_INSERT_V11 = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                  'creation_date, model_path, is_custom_base_model) VALUES (?,?,?,?,?,?,?)')


def modelforge_v10(conn):
    conn.execute(MODELFORGE_V10)
    conn.executemany(_MF_INSERT_V10, MODELFORGE_ROWS_V10)


def modelforge_v11_altered(conn):
    """v1.0 rows, then the app's probe failed and it ran the ALTER, then v1.1 rows."""
    modelforge_v10(conn)
    conn.execute(MODELFORGE_V11_ALTER)
    conn.executemany(_MF_INSERT_V11, MODELFORGE_ROWS_V11)


def modelforge_v11_fresh(conn):
    conn.execute(MODELFORGE_V11_FRESH)
    conn.executemany(_MF_INSERT_V11, [r + (False,) for r in MODELFORGE_ROWS_V10]
                     + MODELFORGE_ROWS_V11)


def modelforge_v2_models(conn):
    conn.execute(MODELFORGE_V2_MODELS)
    conn.execute("INSERT INTO models (id, name, source, config, created_at) VALUES "
                 "(1, 'llama-sum', 'hub', '{\"lora\": {\"r\": 8}}', '2025-12-01 10:00:00.000000')")


# -- inference-autotuner ----------------------------------------------------------------------

AUTOTUNER_ORIGINAL = '''
CREATE TABLE tasks (
  id INTEGER NOT NULL, task_name VARCHAR NOT NULL, description VARCHAR, status VARCHAR(9),
  model_config JSON NOT NULL, base_runtime VARCHAR NOT NULL, runtime_image_tag VARCHAR,
  parameters JSON NOT NULL, optimization_config JSON NOT NULL, benchmark_config JSON NOT NULL,
  deployment_mode VARCHAR, total_experiments INTEGER, successful_experiments INTEGER,
  best_experiment_id INTEGER, created_at DATETIME, started_at DATETIME, completed_at DATETIME,
  elapsed_time FLOAT,
  PRIMARY KEY (id), FOREIGN KEY(best_experiment_id) REFERENCES experiments (id));
CREATE INDEX ix_tasks_id ON tasks (id);
CREATE INDEX ix_tasks_status ON tasks (status);
CREATE UNIQUE INDEX ix_tasks_task_name ON tasks (task_name);
'''

AUTOTUNER_HEAD = '''
CREATE TABLE tasks (
  id INTEGER NOT NULL, task_name VARCHAR NOT NULL, description VARCHAR, status VARCHAR(9),
  model_config JSON NOT NULL, base_runtime VARCHAR NOT NULL, runtime_image_tag VARCHAR,
  parameters JSON NOT NULL, optimization_config JSON NOT NULL, benchmark_config JSON NOT NULL,
  slo_config JSON, quant_config JSON, parallel_config JSON,
  clusterbasemodel_config JSON, clusterservingruntime_config JSON,
  created_clusterbasemodel VARCHAR, created_clusterservingruntime VARCHAR,
  deployment_mode VARCHAR, metadata JSON, total_experiments INTEGER, successful_experiments INTEGER,
  best_experiment_id INTEGER, created_at DATETIME, started_at DATETIME, completed_at DATETIME,
  elapsed_time FLOAT,
  PRIMARY KEY (id), FOREIGN KEY(best_experiment_id) REFERENCES experiments (id));
CREATE INDEX ix_tasks_id ON tasks (id);
CREATE INDEX ix_tasks_status ON tasks (status);
CREATE UNIQUE INDEX ix_tasks_task_name ON tasks (task_name);
'''

# The hand-run scripts: PRAGMA table_info(tasks), then one ALTER per missing column.
AUTOTUNER_MID_NOVEMBER = [('slo_config', 'JSON'), ('quant_config', 'JSON'),
                          ('parallel_config', 'JSON'), ('metadata', 'JSON')]
AUTOTUNER_2025_11_18 = [('clusterbasemodel_config', 'JSON'),
                        ('clusterservingruntime_config', 'JSON'),
                        ('created_clusterbasemodel', 'VARCHAR'),
                        ('created_clusterservingruntime', 'VARCHAR')]

# The other tables create_all made in the same file; modelstore leaves them alone.
AUTOTUNER_OTHER_TABLES = '''
CREATE TABLE experiments (
  id INTEGER NOT NULL, task_id INTEGER NOT NULL, experiment_id INTEGER NOT NULL,
  parameters JSON NOT NULL, status VARCHAR(12), error_message VARCHAR, metrics JSON,
  objective_score FLOAT, gpu_info JSON, service_name VARCHAR, service_url VARCHAR,
  created_at DATETIME, started_at DATETIME, completed_at DATETIME, elapsed_time FLOAT,
  PRIMARY KEY (id), FOREIGN KEY(task_id) REFERENCES tasks (id));
CREATE INDEX ix_experiments_id ON experiments (id);
CREATE INDEX ix_experiments_task_id ON experiments (task_id);
CREATE INDEX ix_experiments_objective_score ON experiments (objective_score);
CREATE TABLE parameter_presets (
  id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, description TEXT, category VARCHAR(100),
  runtime VARCHAR(50), is_system BOOLEAN, parameters JSON NOT NULL, metadata JSON,
  created_at DATETIME DEFAULT (CURRENT_TIMESTAMP),
  updated_at DATETIME DEFAULT (CURRENT_TIMESTAMP), PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_parameter_presets_name ON parameter_presets (name);
CREATE INDEX ix_parameter_presets_category ON parameter_presets (category);
'''

# Rows as the app wrote them: enum NAMES, JSON text, SQLAlchemy's DATETIME text (UTC).
_TASK_ORIGINAL_COLUMNS = ('id', 'task_name', 'description', 'status', 'model_config',
                          'base_runtime', 'runtime_image_tag', 'parameters',
                          'optimization_config', 'benchmark_config', 'deployment_mode',
                          'total_experiments', 'successful_experiments', 'best_experiment_id',
                          'created_at', 'started_at', 'completed_at', 'elapsed_time')
AUTOTUNER_ROWS_ORIGINAL = [
    (1, 'llama-1b-sglang', 'first sweep', 'COMPLETED',
     '{"model_name": "llama-3-2-1b-instruct", "namespace": "autotuner"}', 'sglang', 'v0.4.6',
     '{"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.9]}',
     '{"strategy": "grid_search", "objective": "maximize_throughput"}',
     '{"task": "text-to-text", "num_concurrency": [1, 4], "max_time_per_iteration": 10}',
     'docker', 4, 3, 2, '2025-10-24 09:12:33.123456', '2025-10-24 09:12:40.000001',
     '2025-10-24 10:02:01.500000', 2961.5),
    (2, 'vllm-pending', None, 'PENDING', '{"model_name": "mistral-7b-instruct"}', 'vllm', None,
     '{"max-num-seqs": [64, 128]}', '{"strategy": "random", "max_iterations": 5}', '{}',
     None, 0, 0, None, '2025-10-25 11:00:00.000000', None, None, None),
    (3, 'failed-run', 'OOM — déjà vu', 'FAILED', '{"model_name": "deepseek-v3"}', 'sglang',
     'latest',
     '{}', '{"strategy": "grid_search"}', '{"unicode": "d\\u00e9j\\u00e0 vu \\u2713"}', 'ome',
     2, 0, None, '2025-10-26 00:00:00.999999', '2025-10-26 00:01:00.000000',
     '2025-10-26 00:05:00.000000', 240.0),
]
AUTOTUNER_ROWS_MID_NOVEMBER = [
    # (+ slo_config, quant_config, parallel_config, metadata)
    (4, 'slo-run', 'with SLOs', 'RUNNING', '{"model_name": "llama-3-1-70b-instruct"}', 'sglang',
     None, '{"tp-size": [4, 8]}', '{"strategy": "bayesian"}', '{"num_concurrency": [8]}',
     'docker', 1, 0, None, '2025-11-14 16:20:00.000000', '2025-11-14 16:21:00.000000', None,
     None, '{"ttft": 0.5, "tpot": 0.05, "steepness": 0.1}', '{"gemm_dtype": "fp8"}',
     '{"tp": 4, "pp": 1}', '{"checkpoint": {"iteration": 3}}'),
]
AUTOTUNER_ROWS_2025_11_18 = [
    # (+ clusterbasemodel_config, clusterservingruntime_config, created_clusterbasemodel,
    #  created_clusterservingruntime)
    (5, 'ome-preset', None, 'CANCELLED', '{"model_name": "llama-3-2-3b-instruct"}', 'sglang',
     None, '{}', '{"strategy": "grid_search"}', '{}', 'ome', 0, 0, None,
     '2025-11-18 08:00:00.000000', None, None, None, None, None, None, None,
     '{"preset": "llama-3-2-3b-instruct", "overrides": {"storage": {"path": "/raid"}}}',
     '{"preset": "sglang-llama-small"}', 'llama-3-2-3b-instruct', 'sglang-llama-small'),
    (6, 'ome-custom', 'custom resources', 'COMPLETED', '{"model_name": "my-model"}', 'vllm',
     None, '{}', '{}', '{}', 'ome', 1, 1, None, '2025-11-18 09:30:15.250000', None, None, 12.25,
     None, None, None, None,
     '{"name": "my-model", "spec": {"displayName": "My Model", "vendor": "acme", "version": '
     '"1.0", "storage": {"storageUri": "hf://acme/my-model", "path": "/raid/my-model"}}}',
     '{"name": "my-runtime", "spec": {"supportedModelFormats": [{"name": "safetensors"}], '
     '"protocolVersions": ["openAI"], "engineConfig": {"runner": {"name": "r", "image": '
     '"vllm/vllm-openai:v0.6", "resources": {"limits": {"nvidia.com/gpu": 1}}}}}}',
     'my-model', 'my-runtime'),
    (7, 'ome-unset', None, 'PENDING', '{"model_name": "x"}', 'sglang', None, '{}', '{}', '{}',
     'docker', None, None, None, '2025-11-19 12:00:00.000000', None, None, None,
     None, None, None, None, None, None, None, None),
]
EXPERIMENT_ROWS = [
    (1, 1, 1, '{"tp-size": 1}', 'SUCCESS', None, '{"throughput": 1200.5}', 0.81),
    (2, 1, 2, '{"tp-size": 2}', 'SUCCESS', None, '{"throughput": 2100.0}', 0.93),
    (3, 1, 3, '{"tp-size": 2, "mem-fraction-static": 0.9}', 'FAILED', 'CUDA OOM', None, None),
    (4, 3, 1, '{}', 'FAILED', 'OOM', None, None),
]


def _insert(conn, table, columns, rows):
    conn.executemany('INSERT INTO %s (%s) VALUES (%s)' % (
        table, ', '.join(columns), ', '.join('?' * len(columns))), rows)


def _alter(conn, columns):
    have = {r[1] for r in conn.execute('PRAGMA table_info(tasks)')}
    for name, type_ in columns:
        if name not in have:
            conn.execute('ALTER TABLE tasks ADD COLUMN %s %s' % (name, type_))


def _autotuner(conn, stage, fresh_head=False):
    conn.execute('PRAGMA journal_mode=WAL')
    conn.executescript(AUTOTUNER_HEAD if fresh_head else AUTOTUNER_ORIGINAL)
    conn.executescript(AUTOTUNER_OTHER_TABLES)
    columns = list(_TASK_ORIGINAL_COLUMNS)
    rows = list(AUTOTUNER_ROWS_ORIGINAL)
    if fresh_head:
        columns += [c for c, _ in AUTOTUNER_MID_NOVEMBER + AUTOTUNER_2025_11_18]
        rows = ([r + (None,) * 8 for r in rows] + [r + (None,) * 4 for r in
                                                    AUTOTUNER_ROWS_MID_NOVEMBER]
                + AUTOTUNER_ROWS_2025_11_18)
        _insert(conn, 'tasks', columns, rows)
    else:
        _insert(conn, 'tasks', columns, rows)
        if stage >= 2:
            _alter(conn, AUTOTUNER_MID_NOVEMBER)
            columns += [c for c, _ in AUTOTUNER_MID_NOVEMBER]
            _insert(conn, 'tasks', columns, AUTOTUNER_ROWS_MID_NOVEMBER)
        if stage >= 3:
            _alter(conn, AUTOTUNER_2025_11_18)
            columns += [c for c, _ in AUTOTUNER_2025_11_18]
            _insert(conn, 'tasks', columns, AUTOTUNER_ROWS_2025_11_18)
    _insert(conn, 'experiments', ('id', 'task_id', 'experiment_id', 'parameters', 'status',
                                  'error_message', 'metrics', 'objective_score'),
            EXPERIMENT_ROWS)
    conn.execute("INSERT INTO parameter_presets (name, category, runtime, is_system, "
                 "parameters, created_at, updated_at) VALUES ('memory-efficient', 'memory', "
                 "'sglang', 1, '{\"mem-fraction-static\": [0.7]}', '2025-10-24 09:00:00', "
                 "'2025-10-24 09:00:00')")


def autotuner_original(conn):
    _autotuner(conn, 1)


def autotuner_mid_november(conn):
    _autotuner(conn, 2)


def autotuner_2025_11_18(conn):
    _autotuner(conn, 3)


def autotuner_head(conn):
    _autotuner(conn, 3, fresh_head=True)


def build(path, *parts):
    """Write a legacy file at ``path`` from builder functions; returns the path."""
    conn = sqlite3.connect(path)
    try:
        for part in parts:
            part(conn)
        conn.commit()
    finally:
        conn.close()
    return path


# name -> (builder parts, {script: how modelstore's history must record it})
# Every shipped script: the legacy apps know nothing of those after 0004, so those always run.
_ALL_RUN = tuple(script.name for script in discover())


def _expect(*adopted):
    """Every shipped script 'ran', except those named by number, which are 'adopted'."""
    return {name: 'adopted' if name[:4] in adopted else 'ran' for name in _ALL_RUN}


STATES = {
    'modelforge-v1.0': ((modelforge_v10,), _expect()),
    'modelforge-v1.1-altered': ((modelforge_v11_altered,), _expect('0002')),
    'modelforge-v1.1-fresh': ((modelforge_v11_fresh,), _expect('0002')),
    'modelforge-v2': ((modelforge_v11_altered, modelforge_v2_models), _expect('0002')),
    'autotuner-original': ((autotuner_original,), _expect()),
    'autotuner-mid-november': ((autotuner_mid_november,), _expect('0003')),
    'autotuner-2025-11-18': ((autotuner_2025_11_18,), _expect('0003', '0004')),
    'autotuner-head': ((autotuner_head,), _expect('0003', '0004')),
    'both-apps-current': ((modelforge_v11_altered, modelforge_v2_models, autotuner_2025_11_18),
                          _expect('0001', '0002', '0003', '0004')),
    'both-apps-oldest': ((modelforge_v10, autotuner_original), _expect('0001')),
    'both-apps-mixed': ((modelforge_v10, autotuner_head), _expect('0001', '0003', '0004')),
}

# Tables the legacy apps own and modelstore never touches.
UNMODELLED = ('experiments', 'parameter_presets', 'models')
