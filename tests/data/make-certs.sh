#!/bin/sh
# Makes the certificate fixtures of the unit tests (see README.md) with the
# openssl command line: run it from anywhere; it rewrites the *.der here.
# Keys are thrown away: the tests only read certificates.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

cat > ca.cnf <<'CNF'
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
serial = serial
new_certs_dir = .
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
organizationName = optional
countryName = optional
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[signing]
keyUsage = critical, digitalSignature, nonRepudiation
[encryption]
keyUsage = critical, keyEncipherment, keyAgreement
[both]
keyUsage = critical, digitalSignature, keyEncipherment
[none]
subjectKeyIdentifier = hash
[big]
keyUsage = critical, digitalSignature
subjectAltName = @names
[names]
CNF
# Enough names to make a certificate of several GET RESPONSE rounds.
i=1
while [ $i -le 40 ]; do
	echo "DNS.$i = host-$i.example.keyrenew.test" >> ca.cnf
	i=$((i + 1))
done

# ca NAME SUBJECT KEYFILE: a self-signed CA valid 2024-2044.
ca() {
	openssl req -new -utf8 -subj "$2" -key "$3" -out "$1.csr"
	echo 01 > serial
	: > index.txt
	openssl ca -batch -config ca.cnf -selfsign -keyfile "$3" -in "$1.csr" -out "$1.pem" \
		-extensions ca_ext -utf8 -preserveDN -notext -startdate 20240101000000Z -enddate 20440101000000Z $4
}

# leaf FILE CA SUBJECT KEYOPTS SERIAL START END EXT [CA OPTIONS]
leaf() {
	openssl genpkey -quiet $4 -out key.pem
	openssl req -new -utf8 -subj "$3" -key key.pem -out req.csr
	echo "$5" > serial
	: > index.txt
	openssl ca -batch -config ca.cnf -cert "$2.pem" -keyfile "$2.key" -in req.csr -out leaf.pem \
		-extensions "$8" -utf8 -preserveDN -notext -startdate "$6" -enddate "$7" ${9:-}
	openssl x509 -in leaf.pem -outform DER -out "$out/$1"
}

openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-ca.key
ca rsa-ca "/C=CN/O=keyrenew tests/CN=keyrenew Test CA" rsa-ca.key "-md sha256"
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out sm2-ca.key
ca sm2-ca "/C=CN/O=测试认证中心/CN=测试 SM2 CA" sm2-ca.key "-md sm3"
openssl x509 -in rsa-ca.pem -outform DER -out "$out/rsa-ca.der"

leaf rsa2048.der rsa-ca "/C=CN/O=keyrenew tests/CN=RSA Signer" \
	"-algorithm RSA -pkeyopt rsa_keygen_bits:2048" 1001 20250101000000Z 20270101000000Z signing "-md sha256"
leaf ec-p256.der rsa-ca "/C=CN/O=keyrenew tests/CN=李四 (加密)" \
	"-algorithm EC -pkeyopt ec_paramgen_curve:P-256" 1002 20250101000000Z 20270101000000Z encryption "-md sha256"
leaf ec-p384.der rsa-ca "/C=CN/O=keyrenew tests/CN=P-384 no key usage" \
	"-algorithm EC -pkeyopt ec_paramgen_curve:P-384" 0A03 20250101000000Z 20270101000000Z none "-md sha256"
leaf sm2.der sm2-ca "/C=CN/O=深圳市测试有限公司/CN=张三" \
	"-algorithm EC -pkeyopt ec_paramgen_curve:SM2" 00C0FFEE 20250101000000Z 20270101000000Z both "-md sm3"
leaf expired.der rsa-ca "/C=CN/O=keyrenew tests/CN=Expired" \
	"-algorithm EC -pkeyopt ec_paramgen_curve:P-256" 1005 20200101000000Z 20210101000000Z signing "-md sha256"
leaf big.der rsa-ca "/C=CN/O=keyrenew tests/CN=Big RSA-4096 with many names" \
	"-algorithm RSA -pkeyopt rsa_keygen_bits:4096" 1006 20250101000000Z 20270101000000Z big "-md sha256"

# Not a certificate: the first 64 bytes of rsa2048.der followed by noise.
{ head -c 64 "$out/rsa2048.der"; printf 'not a certificate, just noise\n'; } > "$out/garbage.bin"
