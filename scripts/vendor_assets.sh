#!/usr/bin/env bash
# Copy the npm front-end packages the console uses into guidebot/web/static/vendor/
# (served by the app itself: no CDN at run time). Run after changing package.json:
#   npm ci && scripts/vendor_assets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=guidebot/web/static/vendor/echarts
mkdir -p "$out"
cp node_modules/echarts/dist/echarts.min.js node_modules/echarts/LICENSE "$out/"
node -e 'console.log(require("./node_modules/echarts/package.json").version)' > "$out/VERSION"
echo "vendored echarts $(cat "$out/VERSION") into $out"
# The sidebar's WeCom JS-SDK (the official @wecom/jssdk build for a <script> tag).
cp node_modules/@wecom/jssdk/dist/wecom.global.prod.js guidebot/web/static/vendor/
echo "vendored @wecom/jssdk $(node -e 'console.log(require("./node_modules/@wecom/jssdk/package.json").version)')"
