"""The project's shape: compose file, Procfile, settings read from the environment."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_defines_the_platform():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]
    for name in ("web", "worker", "beat"):
        assert services[name]["build"] == "."
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"].startswith("redis://")
    for name in ("web", "postgres", "redis"):
        assert "healthcheck" in services[name]
    assert (ROOT / "Dockerfile").exists()


def test_procfile_starts_web_worker_and_beat():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {"web", "worker", "beat"} <= set(lines)
    assert "gunicorn" in lines["web"] and "celery" in lines["worker"] and " beat" in lines["beat"]


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "0", "VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smsplatform.settings'; django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_database_and_broker_come_from_the_environment(tmp_path):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='smsplatform.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path),
        "HOME": str(tmp_path),
        "DATABASE_URL": "postgres://u:p@db.internal:5432/sms",
        "CELERY_BROKER_URL": "redis://cache:6379/1",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["django.db.backends.postgresql", "sms", "redis://cache:6379/1"]
    del env["DATABASE_URL"], env["CELERY_BROKER_URL"]
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    engine, name, broker = out.stdout.split()
    assert engine == "django.db.backends.sqlite3" and name == str(tmp_path / "db.sqlite3") and broker == "filesystem://"
