#!/usr/bin/env bash
# Refreshes the widget's vendored DOMPurify and marked from npm (see chorus/webchat/static/vendor/README.md).
#   scripts/update-widget-vendor.sh 3.4.18 18.2.1
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 DOMPURIFY_VERSION MARKED_VERSION" >&2; exit 2; fi
dest="$(cd "$(dirname "$0")/.." && pwd)/chorus/webchat/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "dompurify@$1" "marked@$2" >/dev/null
mkdir dompurify marked
tar xzf "dompurify-$1.tgz" -C dompurify
tar xzf "marked-$2.tgz" -C marked
sed '/^\/\/# sourceMappingURL=/d' dompurify/package/dist/purify.min.js >"$dest/purify.min.js"
sed '/^\/\/# sourceMappingURL=/d' marked/package/lib/marked.umd.js >"$dest/marked.umd.js"
cp dompurify/package/LICENSE "$dest/LICENSE.dompurify"
cp marked/package/LICENSE* "$dest/LICENSE.marked"
echo "vendored DOMPurify $1 and marked $2 into $dest"
