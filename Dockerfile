# wecrm: one image for every role (web, worker, all). Runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY crm_store ./crm_store
COPY templates ./templates
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wecrm
COPY --from=build /install /usr/local
USER wecrm
WORKDIR /home/wecrm
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
CMD ["wecrm", "serve", "--host", "0.0.0.0", "--port", "8080", "--role", "all"]
