#!/usr/bin/env bash
# The lost-registry demo on the embedded default (a directory vault), all on loopback:
#   1. start a real registry and push sample images into it with skopeo,
#   2. snapshot every repository into the vault,
#   3. lose the registry (stop it, delete its storage) and start an empty one,
#   4. restore every image from the vault,
#   5. show that every digest is the same as before, as skopeo sees it, and that the vault verifies.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD/.imagevault/demo
vault="file://$work/vault"
rm -rf "$work"; mkdir -p "$work"
trap 'bash scripts/testbed.sh stop "$work/testbed" >/dev/null 2>&1 || true' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$work#.imagevault/demo#g"; "$@"; }
iv() { node dist/cli/imagevault.js --store "$vault" "$@"; }

step "0. build the CLI"
npm run --silent build

step "1. a registry with images in it"
bash scripts/testbed.sh start "$work/testbed" >/dev/null
reg=$(jq -r .registry "$work/testbed/env.json")
echo "registry at $reg"
npx tsx scripts/demo-images.ts "$reg" "$work/images" "$work/before.json"

step "2. snapshot every repository under demo/ into the vault"
run iv snapshot --all-tags "$reg/demo/"
run iv list

step "3. the registry is lost"
bash scripts/testbed.sh stop "$work/testbed"
rm -rf "$work/testbed/registry/data"
echo "registry stopped and its storage deleted; starting an empty one"
new=$(bash scripts/testbed.sh registry "$work/testbed" rebuilt)
echo "empty registry at $new"

step "4. restore everything from the vault into the empty registry"
run iv restore --all --to "$new"

step "5. same digests as before the loss (skopeo, an independent client, reads the restored registry)"
fail=0
while read -r repo tag digest; do
  if [ "$tag" != - ]; then ref="$new/$repo:$tag"; label="$repo:$tag"; else ref="$new/$repo@$digest"; label="$repo (signature)"; fi
  now=$(skopeo inspect --raw --tls-verify=false "docker://$ref" | sha256sum | cut -d' ' -f1)
  if [ "sha256:$now" = "$digest" ]; then mark=identical; else mark=DIFFERENT; fail=1; fi
  printf '  %-34s before %s  after sha256:%s  %s\n' "$label" "${digest:7:12}" "${now:0:12}" "$mark"
done < <(jq -r '.[] | "\(.repo) \(if .tag == "" then "-" else .tag end) \(.digest)"' "$work/before.json")

step "6. the vault verifies (every blob re-hashed)"
run iv verify

step "7. provenance: what security asks of an image, and the tamper-evident log behind it"
run iv provenance show demo/multi:1
run iv provenance verify
[ "$fail" = 0 ] && printf '\n\033[1mAll images restored bit-for-bit.\033[0m\n' || { echo "some digests differ" >&2; exit 1; }
