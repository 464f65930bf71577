# Outpost Lifeline: one image for web, scheduler and migrations (see docker-compose.yml).
# It installs `.` alone: neither the simulator's pyOpenSSL nor the demo's moto. For a demo image,
# `docker build --build-arg EXTRAS=demo .` (that is `pip install -e '.[demo]'`), then
# `docker run -p 8000:8000 IMAGE lifeline demo --host 0.0.0.0`.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/lifeline
RUN useradd --system --uid 10001 --home /srv/lifeline lifeline
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Inert without their extra: the production commands never import them.
COPY lifeline_simulator ./lifeline_simulator
COPY lifeline_demo ./lifeline_demo
# Editable install: the app finds templates/, static/, migrations/ and alembic.ini beside itself.
RUN pip install --upgrade pip && pip install -e ".${EXTRAS:+[$EXTRAS]}"
USER lifeline
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["lifeline", "serve", "--host", "0.0.0.0", "--no-scheduler"]
