#!/usr/bin/env bash
# Makes the files of every Secret the manifests reference, one directory per Secret, one file per key:
#
#   deploy/k8s/make-secrets.sh DIR [NAMESPACE]     (NAMESPACE default: loam; it goes into etcd's cert names)
#
#   DIR/loam-tokens/auth-tokens         `<role> <token>` lines: admin, cluster (Coordinator and workers), read (FUSE)
#   DIR/loam-fuse-token/token           the read token the FUSE DaemonSet sends
#   DIR/loam-s3-keys/access-key         the key pair S3 requests to the workers are signed with
#   DIR/loam-s3-keys/secret-key
#   DIR/loam-etcd-tls/{ca.crt,tls.crt,tls.key}          etcd's server and peer certificate (both uses)
#   DIR/loam-etcd-client-tls/{ca.crt,tls.crt,tls.key}   the client certificate Loam presents to etcd
#
# Then, for a cluster (the production and daemonset overlays expect these Secrets to exist):
#
#   for d in DIR/*/; do kubectl -n NAMESPACE create secret generic "$(basename "$d")" --from-file="$d"; done
#
# The dev overlay's files (deploy/k8s/overlays/dev/secrets/) were made by this script and are public: dev only.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
out="$1" ns="${2:-loam}"
etcd_members=5   # names for up to 5 etcd members (loam-etcd-0 … loam-etcd-4), so etcd can grow to 5

mkdir -p "$out"
umask 077
token() { openssl rand -hex 32; }
mkdir -p "$out/loam-tokens" "$out/loam-fuse-token" "$out/loam-s3-keys" "$out/loam-etcd-tls" "$out/loam-etcd-client-tls"
read_token="$(token)"
printf 'admin %s\ncluster %s\nread %s\n' "$(token)" "$(token)" "$read_token" > "$out/loam-tokens/auth-tokens"
printf '%s\n' "$read_token" > "$out/loam-fuse-token/token"
printf 'LOAM%s' "$(openssl rand -hex 8 | tr a-f A-F)" > "$out/loam-s3-keys/access-key"
printf '%s' "$(openssl rand -hex 20)" > "$out/loam-s3-keys/secret-key"

# A CA that signs etcd's certificate and Loam's client certificate (P-256 keys, 10 years).
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
openssl req -x509 -nodes -days 3650 -subj "/CN=loam-etcd-ca" "${key[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
leaf() { # name, extensions file
  openssl req -nodes -subj "/CN=$1" "${key[@]}" -keyout "$tmp/$1.key" -out "$tmp/$1.csr" 2>/dev/null
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -days 3650 \
    -extfile "$2" -out "$tmp/$1.crt" 2>/dev/null
}
# etcd's names: the Service, each member, short (as the config files name them) and qualified.
sans="DNS:localhost,IP:127.0.0.1,DNS:loam-etcd,DNS:loam-etcd.$ns.svc,DNS:loam-etcd.$ns.svc.cluster.local"
for i in $(seq 0 $((etcd_members - 1))); do
  m="loam-etcd-$i.loam-etcd"
  sans="$sans,DNS:$m,DNS:$m.$ns,DNS:$m.$ns.svc,DNS:$m.$ns.svc.cluster.local"
done
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$sans" > "$tmp/server.ext"
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' > "$tmp/client.ext"
leaf loam-etcd "$tmp/server.ext"
leaf loam "$tmp/client.ext"
for d in loam-etcd-tls loam-etcd-client-tls; do cp "$tmp/ca.crt" "$out/$d/ca.crt"; done
cp "$tmp/loam-etcd.crt" "$out/loam-etcd-tls/tls.crt"; cp "$tmp/loam-etcd.key" "$out/loam-etcd-tls/tls.key"
cp "$tmp/loam.crt" "$out/loam-etcd-client-tls/tls.crt"; cp "$tmp/loam.key" "$out/loam-etcd-client-tls/tls.key"
echo "make-secrets: the Secrets' files are in $out (namespace $ns)"
