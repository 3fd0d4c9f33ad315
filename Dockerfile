# healthscore: the web app, the REST API and the daily job in one container.
#   docker build -t healthscore .
#   docker run -p 8000:8000 -v "$PWD/my-project:/srv/healthscore/project" healthscore
# The project folder (YAML, data, and its .healthscore state) is a volume; see compose.yaml
# for PostgreSQL as the workflow store.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 healthscore
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/healthscore-*.whl "psycopg[binary]>=3.1" && rm -rf /tmp/dist
USER healthscore
WORKDIR /srv/healthscore
VOLUME ["/srv/healthscore/project"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
ENTRYPOINT ["healthscore"]
CMD ["serve", "-p", "/srv/healthscore/project", "--host", "0.0.0.0", "--port", "8000", "--daily-at", "06:30"]
