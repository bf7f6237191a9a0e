#!/usr/bin/env bash
# Fetch Leaflet (version pinned in node/web/ui/package-lock.json) from the npm registry and copy its dist files
# and LICENSE into node/web/static/vendor/leaflet. The copies are committed: a running node never needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --silent --no-audit --no-fund --prefix node/web/ui
src=node/web/ui/node_modules/leaflet
dest=node/web/static/vendor/leaflet
rm -rf "$dest"
mkdir -p "$dest/images"
cp "$src/dist/leaflet.js" "$src/dist/leaflet.css" "$src/LICENSE" "$dest/"
cp "$src/dist/images/"*.png "$dest/images/"
node -e 'const p=require(process.argv[1]); console.log(`${p.name} ${p.version}`)' "$PWD/$src/package.json" > "$dest/VERSION"
echo "vendored $(cat "$dest/VERSION") into $dest"
