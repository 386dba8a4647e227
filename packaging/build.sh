#!/usr/bin/env bash
# Builds what a user installs: pgstate_VERSION-1_amd64.deb (dpkg-deb), pgstate-VERSION-1.x86_64.rpm
# (rpmbuild) and pgstate-VERSION-linux-x64.tar.gz, from the Native AOT binary (scripts/publish.sh),
# the man page, bash completion and drift units in packaging/. Then checks them: dpkg-deb -I/-c,
# lintian (errors and warnings fail the build), rpm -qip/-qlp/--requires. Output: artifacts/packages/.
#   packaging/build.sh [--no-check]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

check=true
[ "${1:-}" = "--no-check" ] && check=false

ensure_packages rpm
$check && ensure_packages lintian

bash scripts/publish.sh
binary=artifacts/aot/pgstate
version=$("$binary" --version | cut -d+ -f1)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "error: unexpected version '$version' from $binary --version" >&2; exit 1; }
# Reproducible: every timestamp is the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
out=artifacts/packages
rm -rf "$out"
mkdir -p "$out"
stage=$(mktemp -d /tmp/pgstate-package.XXXXXX)
trap 'rm -rf "$stage"' EXIT
umask 022

# The installed tree, shared by the .deb and the .rpm.
root=$stage/root
install -D -m 0755 "$binary" "$root/usr/bin/pgstate"
install -d -m 0755 "$root/usr/share/man/man1"
sed "s/@VERSION@/$version/" packaging/pgstate.1 | gzip -9n > "$root/usr/share/man/man1/pgstate.1.gz"
install -D -m 0644 packaging/pgstate.bash-completion "$root/usr/share/bash-completion/completions/pgstate"
install -D -m 0644 -t "$root/usr/lib/systemd/system" packaging/systemd/pgstate-drift.service packaging/systemd/pgstate-drift.timer
install -D -m 0644 schemas/pgstate.schema.json "$root/usr/share/pgstate/pgstate.schema.json"
install -d -m 0755 "$root/etc/pgstate"

# The examples as installed: their schema line names where the package puts the schema (the repository's
# ../schemas/ is not there), or, in the tarball, the schema beside them.
installed_examples=$stage/examples-installed; tar_examples=$stage/examples-tar
mkdir -p "$installed_examples" "$tar_examples"
for f in examples/*.yaml; do
  sed 's|\$schema=\.\./schemas/pgstate\.schema\.json|$schema=/usr/share/pgstate/pgstate.schema.json|' "$f" > "$installed_examples/$(basename "$f")"
  sed 's|\$schema=\.\./schemas/pgstate\.schema\.json|$schema=../pgstate.schema.json|' "$f" > "$tar_examples/$(basename "$f")"
done

# --- .deb ---
deb=$stage/deb
cp -a "$root" "$deb"
doc=$deb/usr/share/doc/pgstate
install -d -m 0755 "$doc/examples"
install -m 0644 README.md "$doc/README.md"
install -m 0644 "$installed_examples"/*.yaml "$doc/examples/"
{ sed '/@LICENSE@/,$d' packaging/debian/copyright.in
  sed -e '1,/^$/d' -e 's/^$/./' -e 's/^/ /' LICENSE    # the Expat text without its title and copyright lines
  sed '1,/@LICENSE@/d' packaging/debian/copyright.in; } > "$doc/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -u -d "@$SOURCE_DATE_EPOCH")/" packaging/debian/changelog.in | gzip -9n > "$doc/changelog.Debian.gz"
install -d -m 0755 "$deb/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$deb/DEBIAN/"
install -D -m 0644 packaging/debian/lintian-overrides "$deb/usr/share/lintian/overrides/pgstate"
size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" packaging/debian/control.in > "$deb/DEBIAN/control"
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
find "$deb" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
debfile=$out/pgstate_${version}-1_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$deb" "$debfile" >/dev/null

# --- .rpm ---
src=$stage/rpm-src
mkdir -p "$src"
cp -a "$root" "$src/root"
install -m 0644 LICENSE README.md "$src/"
install -d "$src/examples" && install -m 0644 "$installed_examples"/*.yaml "$src/examples/"
sed "s/@VERSION@/$version/" packaging/rpm/pgstate.spec.in > "$src/pgstate.spec"
rpmbuild -bb --quiet \
  --define "_topdir $stage/rpmbuild" --define "_sourcedir $src" --define "_builddir $src" \
  --define "_rpmdir $stage/rpms" --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
  --define "_buildhost pgstate-build" --define "_docdir_fmt %%{NAME}" \
  "$src/pgstate.spec" >&2
rpmfile=$out/pgstate-${version}-1.x86_64.rpm
mv "$stage/rpms/pgstate-${version}-1.x86_64.rpm" "$rpmfile"

# --- tarball: the same files, to install by hand (README: "Install") ---
tar_dir=$stage/tar/pgstate-$version-linux-x64
install -D -m 0755 "$binary" "$tar_dir/pgstate"
sed "s/@VERSION@/$version/" packaging/pgstate.1 > "$tar_dir/pgstate.1"
install -m 0644 packaging/pgstate.bash-completion "$tar_dir/pgstate.bash-completion"
install -D -m 0644 -t "$tar_dir/systemd" packaging/systemd/pgstate-drift.service packaging/systemd/pgstate-drift.timer
install -m 0644 LICENSE README.md schemas/pgstate.schema.json "$tar_dir/"
install -D -m 0644 -t "$tar_dir/examples" "$tar_examples"/*.yaml
tarfile=$out/pgstate-$version-linux-x64.tar.gz
tar -C "$stage/tar" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -cf - "pgstate-$version-linux-x64" | gzip -9n > "$tarfile"

if $check; then
  echo "==> dpkg-deb -I $debfile"; dpkg-deb -I "$debfile"
  echo "==> dpkg-deb -c $debfile"; dpkg-deb -c "$debfile"
  echo "==> lintian $debfile"
  # Errors and warnings fail the build. Left out: initial-upload-closes-no-bugs (this .deb is not an
  # upload to Debian); overrides shipped in the package say why (packaging/debian/lintian-overrides).
  lintian --fail-on error,warning --tag-display-limit 0 --display-info --suppress-tags initial-upload-closes-no-bugs \
    "$debfile" || { echo "error: lintian found errors in $debfile" >&2; exit 1; }
  echo "==> rpm -qip $rpmfile"; rpm -qip "$rpmfile"
  echo "==> rpm -qlp $rpmfile"; rpm -qlpv "$rpmfile"
  echo "==> rpm -qp --requires $rpmfile"; rpm -qp --requires "$rpmfile"
  echo "==> tar -tzvf $tarfile"; tar -tzvf "$tarfile"
fi
echo
ls -l "$debfile" "$rpmfile" "$tarfile" | awk '{printf "%s  %6.1f MB  (%d bytes)\n", $NF, $5/1048576, $5}'
