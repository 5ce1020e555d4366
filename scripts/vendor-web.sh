#!/usr/bin/env bash
# Refresh the map library the dashboard serves from the package (never a CDN): Leaflet and
# Leaflet.markercluster, fetched with `npm pack` at the versions below, copied with their licences
# into cityheart/web/vendor/. Run it after changing a version, then commit the result.
set -euo pipefail

LEAFLET=1.9.4
MARKERCLUSTER=1.5.3   # the 1.x line, written for Leaflet 1.x

root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/cityheart/web/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "leaflet@$LEAFLET" "leaflet.markercluster@$MARKERCLUSTER" >/dev/null
mkdir leaflet markercluster
tar -xzf "leaflet-$LEAFLET.tgz" -C leaflet
tar -xzf "leaflet.markercluster-$MARKERCLUSTER.tgz" -C markercluster

rm -rf "$vendor/leaflet" "$vendor/leaflet.markercluster"
mkdir -p "$vendor/leaflet/images" "$vendor/leaflet.markercluster"
cp leaflet/package/dist/leaflet.js leaflet/package/dist/leaflet.css "$vendor/leaflet/"
cp leaflet/package/dist/images/*.png "$vendor/leaflet/images/"
cp leaflet/package/LICENSE "$vendor/leaflet/LICENSE.txt"
cp markercluster/package/dist/leaflet.markercluster.js markercluster/package/dist/MarkerCluster.css \
   markercluster/package/dist/MarkerCluster.Default.css "$vendor/leaflet.markercluster/"
cp markercluster/package/MIT-LICENCE.txt "$vendor/leaflet.markercluster/LICENSE.txt"
cat > "$vendor/VERSIONS.txt" <<VERSIONS
leaflet $LEAFLET (BSD-2-Clause), https://www.npmjs.com/package/leaflet
leaflet.markercluster $MARKERCLUSTER (MIT), https://www.npmjs.com/package/leaflet.markercluster
refreshed by scripts/vendor-web.sh
VERSIONS
echo "vendored leaflet $LEAFLET and leaflet.markercluster $MARKERCLUSTER into $vendor"
