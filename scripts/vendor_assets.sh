#!/bin/sh
# Re-fetch the web app's static assets from the npm registry (run by hand when upgrading;
# the files are committed so the app works offline with no build step).
set -eu
DEST="$(dirname "$0")/../src/healthscore/web/static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
npm pack --silent htmx.org@2.0.11 chart.js@4.6.1 @picocss/pico@2.1.1 swagger-ui-dist@5.35.0 \
  axe-core@4.14.1 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
cp htmx.org-2.0.11/package/dist/htmx.min.js "$DEST/"
cp chart.js-4.6.1/package/dist/chart.umd.min.js "$DEST/"
cp picocss-pico-2.1.1/package/css/pico.min.css "$DEST/"
cp swagger-ui-dist-5.35.0/package/swagger-ui-bundle.js swagger-ui-dist-5.35.0/package/swagger-ui.css "$DEST/"
# axe-core: the accessibility checks the browser tests run on every page (not loaded by the app)
cp axe-core-4.14.1/package/axe.min.js "$DEST/"
for p in htmx.org-2.0.11 chart.js-4.6.1 picocss-pico-2.1.1 swagger-ui-dist-5.35.0; do cp "$p"/package/LICENSE* "$DEST/LICENSE.$p"; done
cp axe-core-4.14.1/package/LICENSE "$DEST/LICENSE.axe-core-4.14.1"  # MPL-2.0
