/*
 * crypto/ca.c — a minimal certification authority for quick starts and
 * tests: `gridvfs ca init|issue|revoke`.  EC P-256 keys, SHA-256, random
 * serials, one CRL file.  Sites with their own PKI use openssl(1) instead.
 */
#include "crypto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CA_DAYS 3650L           /* the CA itself */
#define CA_CRL_DAYS 3650L       /* quick-start CRLs must not lapse silently */
#define CA_DAY 86400L

struct ca {
	X509 *ca_cert;
	EVP_PKEY *ca_key;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *ossl_err(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_peek_error();

	if (!e)
		return "OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

static int path_of(char *out, const char *dir, const char *name,
		   const char *ext)
{
	int n = snprintf(out, PATH_MAX, "%s/%s%s", dir, name, ext);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Names become file names and CNs: keep them boring. */
static bool name_ok(const char *name)
{
	const char *p;

	if (!name || !*name || *name == '.' || strlen(name) > 64)
		return false;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-'))
			return false;
	return true;
}

/* Write a file atomically (temp + rename) with exactly mode. */
static int file_put(const char *path, const void *data, size_t len,
		    mode_t mode)
{
	char tmp[PATH_MAX];
	const char *p = data;
	ssize_t r;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		rc = -errno;
	while (!rc && len > 0) {
		r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -errno;
		else {
			p += r;
			len -= (size_t)r;
		}
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* PEM-encode through a memory BIO, write, and wipe the BIO's bytes. */
static int pem_put(const char *path, mode_t mode, X509 *cert, X509_CRL *crl,
		   EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ok, rc;

	if (!bio)
		return -ENOMEM;
	if (cert)
		ok = PEM_write_bio_X509(bio, cert);
	else if (crl)
		ok = PEM_write_bio_X509_CRL(bio, crl);
	else
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
					      NULL);
	len = BIO_get_mem_data(bio, &data);
	rc = ok == 1 && len > 0 ? file_put(path, data, (size_t)len, mode)
			       : -ENOMEM;
	if (len > 0)
		OPENSSL_cleanse(data, (size_t)len);
	BIO_free(bio);
	return rc;
}

static int ext_add(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (!ex)
		return -EINVAL;
	ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -ENOMEM;
}

static int serial_random(X509 *cert)
{
	BIGNUM *bn = BN_new();
	int ok;

	/* 127 random bits: positive, unique without a serial file. */
	ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	return ok ? 0 : -ENOMEM;
}

/* A certificate skeleton: version 3, serial, subject, validity, key. */
static X509 *cert_new(const char *cn, EVP_PKEY *key, long from_s, long to_s)
{
	X509 *cert = X509_new();
	X509_NAME *nm = X509_NAME_new();
	int ok;

	ok = cert && nm && X509_set_version(cert, X509_VERSION_3) &&
	     serial_random(cert) == 0 &&
	     X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
					(const unsigned char *)"gridvfs", -1,
					-1, 0) &&
	     X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) &&
	     X509_set_subject_name(cert, nm) &&
	     X509_gmtime_adj(X509_getm_notBefore(cert), from_s) &&
	     X509_gmtime_adj(X509_getm_notAfter(cert), to_s) &&
	     X509_set_pubkey(cert, key);
	X509_NAME_free(nm);
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

static int ca_load(const char *dir, struct ca *ca, char *err, size_t errlen)
{
	char path[PATH_MAX];
	BIO *bio;

	memset(ca, 0, sizeof(*ca));
	if (path_of(path, dir, "ca", ".crt") == 0 &&
	    (bio = BIO_new_file(path, "r")) != NULL) {
		ca->ca_cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (path_of(path, dir, "ca", ".key") == 0 &&
	    (bio = BIO_new_file(path, "r")) != NULL) {
		ca->ca_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, "");
		BIO_free(bio);
	}
	if (!ca->ca_cert || !ca->ca_key ||
	    X509_check_private_key(ca->ca_cert, ca->ca_key) != 1) {
		errf(err, errlen, "no usable CA in %s (ca.crt + ca.key): %s",
		     dir, ossl_err());
		X509_free(ca->ca_cert);
		EVP_PKEY_free(ca->ca_key);
		return -ENOENT;
	}
	return 0;
}

static void ca_free(struct ca *ca)
{
	X509_free(ca->ca_cert);
	EVP_PKEY_free(ca->ca_key);
}

/* ---------------------------------------------------------------------- */
/* CRL                                                                     */

static X509_CRL *crl_load(const char *dir)
{
	char path[PATH_MAX];
	X509_CRL *crl = NULL;
	BIO *bio;

	if (path_of(path, dir, "crl", ".pem") == 0 &&
	    (bio = BIO_new_file(path, "r")) != NULL) {
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	return crl;
}

/* Stamp, number, sign and write crl (a new or a loaded one). */
static int crl_sign_put(const char *dir, struct ca *ca, X509_CRL *crl)
{
	char path[PATH_MAX];
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *num = NULL;
	long n = 0;
	int ok, rc;

	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	if (num)
		n = ASN1_INTEGER_get(num);
	ASN1_INTEGER_free(num);
	num = ASN1_INTEGER_new();
	ok = t && num && ASN1_INTEGER_set(num, n + 1) &&
	     X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
	     X509_CRL_set_issuer_name(crl,
				      X509_get_subject_name(ca->ca_cert)) &&
	     X509_gmtime_adj(t, 0) && X509_CRL_set1_lastUpdate(crl, t) &&
	     X509_gmtime_adj(t, CA_CRL_DAYS * CA_DAY) &&
	     X509_CRL_set1_nextUpdate(crl, t) &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0,
				   X509V3_ADD_REPLACE) == 1 &&
	     X509_CRL_sort(crl) &&
	     X509_CRL_sign(crl, ca->ca_key, EVP_sha256()) > 0;
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(num);
	if (!ok)
		return -ENOMEM;
	rc = path_of(path, dir, "crl", ".pem");
	return rc ? rc : pem_put(path, 0644, NULL, crl, NULL);
}

int tls_ca_revoke(const char *dir, const char *name, char *err,
		  size_t errlen)
{
	char path[PATH_MAX];
	X509_REVOKED *rev = NULL, *found;
	X509_CRL *crl = NULL;
	X509 *cert = NULL;
	ASN1_TIME *now = NULL;
	struct ca ca;
	BIO *bio;
	int rc;

	if (!name_ok(name)) {
		errf(err, errlen, "bad name \"%s\"", name ? name : "");
		return -EINVAL;
	}
	rc = ca_load(dir, &ca, err, errlen);
	if (rc)
		return rc;
	rc = -ENOENT;
	if (path_of(path, dir, name, ".crt") == 0 &&
	    (bio = BIO_new_file(path, "r")) != NULL) {
		cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (!cert) {
		errf(err, errlen, "cannot read %s/%s.crt", dir, name);
		goto out;
	}
	crl = crl_load(dir);
	if (!crl && !(crl = X509_CRL_new())) {
		rc = -ENOMEM;
		goto out;
	}
	if (X509_CRL_get0_by_serial(crl, &found,
				    X509_get_serialNumber(cert)) == 1) {
		rc = 0; /* already revoked: nothing to do */
		goto out;
	}
	rc = -ENOMEM;
	rev = X509_REVOKED_new();
	now = ASN1_TIME_new();
	if (!rev || !now || !X509_gmtime_adj(now, 0) ||
	    !X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(cert)) ||
	    !X509_REVOKED_set_revocationDate(rev, now) ||
	    !X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL; /* owned by crl */
	rc = crl_sign_put(dir, &ca, crl);
	if (rc)
		errf(err, errlen, "writing %s/crl.pem: %s", dir, strerror(-rc));
out:
	X509_REVOKED_free(rev);
	ASN1_TIME_free(now);
	X509_CRL_free(crl);
	X509_free(cert);
	ca_free(&ca);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* CA creation and issuing                                                 */

static int ca_make(struct ca *ca)
{
	unsigned char rnd[4];
	char cn[64];
	int ok;

	/* A unique CN: two sites' CAs never look like each other. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	snprintf(cn, sizeof(cn), "gridvfs CA %02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3]);
	ca->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca->ca_cert = ca->ca_key ? cert_new(cn, ca->ca_key, 0, CA_DAYS * CA_DAY)
				 : NULL;
	ok = ca->ca_cert &&
	     X509_set_issuer_name(ca->ca_cert,
				  X509_get_subject_name(ca->ca_cert)) &&
	     !ext_add(ca->ca_cert, ca->ca_cert, NID_basic_constraints,
		      "critical,CA:TRUE,pathlen:0") &&
	     !ext_add(ca->ca_cert, ca->ca_cert, NID_key_usage,
		      "critical,keyCertSign,cRLSign") &&
	     !ext_add(ca->ca_cert, ca->ca_cert, NID_subject_key_identifier,
		      "hash") &&
	     X509_sign(ca->ca_cert, ca->ca_key, EVP_sha256()) > 0;
	return ok ? 0 : -ENOMEM;
}

int tls_ca_init(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct ca ca = { 0 };
	X509_CRL *crl = NULL;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		errf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return rc;
	}
	rc = path_of(path, dir, "ca", ".key");
	if (!rc && access(path, F_OK) == 0) {
		errf(err, errlen, "%s exists: refusing to replace a CA", path);
		return -EEXIST;
	}
	if (!rc)
		rc = ca_make(&ca);
	if (!rc)
		rc = pem_put(path, 0600, NULL, NULL, ca.ca_key);
	if (!rc && !(rc = path_of(path, dir, "ca", ".crt")))
		rc = pem_put(path, 0644, ca.ca_cert, NULL, NULL);
	if (!rc)
		rc = (crl = X509_CRL_new()) ? crl_sign_put(dir, &ca, crl)
					    : -ENOMEM;
	if (rc)
		errf(err, errlen, "creating CA in %s: %s", dir, strerror(-rc));
	X509_CRL_free(crl);
	ca_free(&ca);
	return rc;
}

/* Role-specific extensions: SAN + serverAuth, or clientAuth. */
static int leaf_exts(X509 *cert, X509 *issuer, const char *server)
{
	char san[300];
	unsigned char ip[16];
	bool is_ip;

	if (ext_add(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
	    ext_add(cert, issuer, NID_key_usage, "critical,digitalSignature") ||
	    ext_add(cert, issuer, NID_subject_key_identifier, "hash") ||
	    ext_add(cert, issuer, NID_authority_key_identifier, "keyid:always"))
		return -EINVAL;
	if (!server)
		return ext_add(cert, issuer, NID_ext_key_usage, "clientAuth");
	is_ip = inet_pton(AF_INET, server, ip) == 1 ||
		inet_pton(AF_INET6, server, ip) == 1;
	if (strlen(server) > 253 || strpbrk(server, ", \t\n"))
		return -EINVAL;
	snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", server);
	if (ext_add(cert, issuer, NID_subject_alt_name, san))
		return -EINVAL;
	return ext_add(cert, issuer, NID_ext_key_usage, "serverAuth");
}

static int leaf_write(const char *dir, const char *name, X509 *cert,
		      EVP_PKEY *key)
{
	char path[PATH_MAX];
	int rc;

	/* Key first: a certificate without its key on disk is useless. */
	rc = path_of(path, dir, name, ".key");
	if (!rc)
		rc = pem_put(path, 0600, NULL, NULL, key);
	if (!rc && !(rc = path_of(path, dir, name, ".crt")))
		rc = pem_put(path, 0644, cert, NULL, NULL);
	return rc;
}

int tls_ca_issue_validity(const char *dir, const char *name,
			  const char *server, long not_before_s,
			  long not_after_s, char *dn_out, size_t dnlen,
			  char *err, size_t errlen)
{
	struct ca ca;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc;

	if (!name_ok(name) || !strcmp(name, "ca") || !strcmp(name, "crl")) {
		errf(err, errlen, "bad name \"%s\": use [A-Za-z0-9._-], not ca/crl",
		     name ? name : "");
		return -EINVAL;
	}
	rc = ca_load(dir, &ca, err, errlen);
	if (rc)
		return rc;
	rc = -ENOMEM;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cert = key ? cert_new(name, key, not_before_s, not_after_s) : NULL;
	if (!cert || !X509_set_issuer_name(cert,
				X509_get_subject_name(ca.ca_cert)))
		goto out;
	rc = leaf_exts(cert, ca.ca_cert, server);
	if (rc) {
		errf(err, errlen, "bad server name \"%s\"", server);
		goto out;
	}
	rc = X509_sign(cert, ca.ca_key, EVP_sha256()) > 0 ? 0 : -ENOMEM;
	if (!rc)
		rc = leaf_write(dir, name, cert, key);
	if (rc) {
		errf(err, errlen, "issuing %s: %s", name, strerror(-rc));
		goto out;
	}
	if (dn_out && dnlen &&
	    !X509_NAME_oneline(X509_get_subject_name(cert), dn_out, (int)dnlen))
		rc = -ENOMEM;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	ca_free(&ca);
	return rc;
}

int tls_ca_issue(const char *dir, const char *name, const char *server,
		 int days, char *dn_out, size_t dnlen, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (days <= 0 || days > 36500) {
		errf(err, errlen, "days must be 1..36500");
		return -EINVAL;
	}
	if (name_ok(name) && path_of(path, dir, name, ".key") == 0 &&
	    access(path, F_OK) == 0) {
		errf(err, errlen, "%s exists: pick another name, or revoke "
		     "the old one and remove its files", path);
		return -EEXIST;
	}
	return tls_ca_issue_validity(dir, name, server, 0, days * CA_DAY,
				     dn_out, dnlen, err, errlen);
}

/* ---------------------------------------------------------------------- */
/* CLI                                                                     */

static void ca_usage(FILE *f)
{
	fputs("usage: gridvfs ca init DIR\n"
	      "       gridvfs ca issue DIR --name NAME [--server HOSTNAME] "
	      "[--days N]\n"
	      "       gridvfs ca revoke DIR --name NAME\n"
	      "\n"
	      "init    create DIR/ca.crt, DIR/ca.key (0600) and an empty "
	      "DIR/crl.pem\n"
	      "issue   write DIR/NAME.crt and DIR/NAME.key (0600), subject\n"
	      "        /O=gridvfs/CN=NAME; --server HOSTNAME makes a server "
	      "certificate\n"
	      "        (SAN DNS:HOSTNAME or IP:ADDR), otherwise a client one; "
	      "--days\n"
	      "        defaults to 365.  Prints the DN for the grid-mapfile.\n"
	      "revoke  add DIR/NAME.crt to DIR/crl.pem (servers load it with "
	      "tls-crl)\n", f);
}

struct ca_args {
	const char *cmd, *dir, *name, *server;
	int days;
};

static int ca_parse(int argc, char **argv, struct ca_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->days = 365;
	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--name") && v)
			a->name = argv[++i];
		else if (!strcmp(argv[i], "--server") && v)
			a->server = argv[++i];
		else if (!strcmp(argv[i], "--days") && v)
			a->days = atoi(argv[++i]);
		else if (argv[i][0] == '-')
			return -EINVAL;
		else if (!a->cmd)
			a->cmd = argv[i];
		else if (!a->dir)
			a->dir = argv[i];
		else
			return -EINVAL;
	}
	return a->cmd && a->dir ? 0 : -EINVAL;
}

int tls_ca_main(int argc, char **argv)
{
	struct ca_args a;
	char err[512] = "", dn[512];
	int rc, i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			ca_usage(stdout);
			return 0;
		}
	if (ca_parse(argc, argv, &a)) {
		ca_usage(stderr);
		return 2;
	}
	if (!strcmp(a.cmd, "init")) {
		rc = tls_ca_init(a.dir, err, sizeof(err));
		if (!rc)
			printf("CA created: %s/ca.crt (give to every peer), "
			       "%s/ca.key (keep secret), %s/crl.pem\n", a.dir,
			       a.dir, a.dir);
	} else if (!strcmp(a.cmd, "issue") && a.name) {
		rc = tls_ca_issue(a.dir, a.name, a.server, a.days, dn,
				  sizeof(dn), err, sizeof(err));
		if (!rc)
			printf("wrote %s/%s.crt and %s/%s.key\n"
			       "grid-mapfile line (server side):\n"
			       "\"%s\" ACCOUNT\n", a.dir, a.name, a.dir, a.name,
			       dn);
	} else if (!strcmp(a.cmd, "revoke") && a.name) {
		rc = tls_ca_revoke(a.dir, a.name, err, sizeof(err));
		if (!rc)
			printf("revoked %s; servers reload %s/crl.pem on "
			       "restart\n", a.name, a.dir);
	} else {
		ca_usage(stderr);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "gridvfs ca %s: %s\n", a.cmd,
			err[0] ? err : tls_strerror(rc));
		return 1;
	}
	return 0;
}
