# syntax=docker/dockerfile:1
# Loss service image:  docker build -t loss-service .   then   docker run -p 8000:8000 loss-service
# Configuration: LOSS_SERVICE_* environment variables (see README, "Configuration"); the image always
# listens on 0.0.0.0:8000 (publish it elsewhere with -p), so LOSS_SERVICE_HOST/PORT do not apply here.

# ---- builder: install the hash-pinned runtime lock into a venv at the same path as in the final image
FROM python:3.11.14-slim-trixie AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# Wheels only: nothing is compiled in the image, and every file must match a hash in the lock.
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock
# --build-arg VECTOR_MATH=numpy leaves out Intel MKL's vector math (about 1.1 GB of libraries): the engine then
# uses NumPy's exp/log, as fast on CPUs with AVX-512 and 2-4x slower in float64 on the others (README).
ARG VECTOR_MATH=mkl
RUN if [ "${VECTOR_MATH}" = "numpy" ]; then \
        /opt/venv/bin/pip uninstall --yes mkl-umath mkl intel-openmp intel-cmplr-lib-rt intel-cmplr-lib-ur tbb tcmlib umf; \
    fi

# ---- final: slim runtime, non-root, only the application code
FROM python:3.11.14-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    LOSS_SERVICE_WORKERS=1 \
    LOSS_SERVICE_LOG_LEVEL=info

# The service user (numeric in USER below, so Kubernetes runAsNonRoot can verify it).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Code stays owned by root (read-only for the service user); the package data travels with service/:
# service/data/*.json (stored examples) and service/api/static/*.js (the /docs script).
COPY service/ /app/service/
COPY schemas/ /app/schemas/
RUN python -m compileall -q /app/service /app/schemas

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Exec form: this python process is uvicorn's (python -m service calls uvicorn.run with every limit taken from
# the LOSS_SERVICE_* settings, service/server.py), so it is PID 1 and SIGTERM from `docker stop` reaches it;
# it finishes in-flight requests before exiting.
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
