"""Which ceph/s3-tests tests concern Loam, and their categories; and the summary of a run.

In scope: what a cache with write-through does with objects in a bucket that exists. Out of scope, each
with its reason (docs/S3-COMPATIBILITY.md): features Loam refuses by design (versioning, ACLs, policies,
lifecycle, object lock, encryption, tagging, bucket configuration), bucket creation and deletion (a
bucket is a Coordinator mount), and tests marked `fails_on_aws` (they assert Ceph RGW behaviour that AWS
S3 itself does not have). A test is out of scope by its marker, by its name, or by its premise: what its
body (and the module's helpers it calls) does before it asserts anything, e.g. setting a public-read ACL
to test anonymous reads. The decision reads only the tests' source, never their results.

    python3 scope.py markexpr                        # the pytest -m expression of the markers left out
    python3 scope.py summary junit.xml SRC_DIR...    # pass rate per category (SRC_DIR: s3tests/functional)
"""

import ast
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

# Markers whose tests are out of scope, and why.
OUT_MARKERS = {
    "fails_on_aws": "asserts Ceph RGW behaviour that AWS S3 does not have",
    "versioning": "versioning", "delete_marker": "versioning",
    "bucket_policy": "policies", "user_policy": "policies", "role_policy": "policies",
    "session_policy": "policies", "group_policy": "policies", "abac_test": "policies",
    "lifecycle": "lifecycle", "lifecycle_expiration": "lifecycle", "lifecycle_transition": "lifecycle",
    "cloud_transition": "lifecycle", "cloud_restore": "lifecycle",
    "object_lock": "object lock",
    "encryption": "encryption", "sse_s3": "encryption", "bucket_encryption": "encryption",
    "tagging": "tagging",
    "bucket_logging": "bucket configuration", "bucket_logging_cleanup": "bucket configuration",
    "fails_without_logging_rollover": "bucket configuration",
    "s3website": "bucket configuration", "s3website_routing_rules": "bucket configuration",
    "s3website_redirect_location": "bucket configuration", "object_ownership": "ACLs",
    "s3select": "S3 Select", "sns": "notifications", "appendobject": "RGW extension (append)",
    "storage_class": "storage classes", "iam_user": "IAM", "iam_account": "IAM", "iam_role": "IAM",
    "iam_tenant": "IAM", "iam_cross_account": "IAM", "test_of_sts": "IAM", "webidentity_test": "IAM",
    "token_claims_trust_policy_test": "IAM", "token_principal_tag_role_policy_test": "IAM",
    "token_request_tag_trust_policy_test": "IAM", "token_resource_tags_test": "IAM",
    "token_role_tags_test": "IAM", "token_tag_keys_test": "IAM",
}

# Test names (after `test_`) out of scope by what they are about, first match wins.
OUT_NAMES = [
    (r"acl|grant|owner|public_read|public_write|authenticated_read|anon_put|anonymous_.*write", "ACLs"),
    (r"policy|policies|_condition_", "policies"),
    (r"versioning|version|delete_marker", "versioning"),
    (r"lifecycle|_lc_|expiration|transition|restore", "lifecycle"),
    (r"object_lock|retention|legal_hold", "object lock"),
    (r"encrypt|sse|kms", "encryption"),
    (r"tagging|tags", "tagging"),
    (r"cors|logging|website|notification|accelerate|request_payment|ownership|torrent|bucket_ratelimit", "bucket configuration"),
    (r"bucket_create|bucket_recreate|bucket_delete|bucket_concurrent|create_bucket|bucket_naming|bucket_name|"
     r"buckets_create|bucket_list_long_name|bucket_head_notexist|bucket_notexist|bucket_location", "bucket creation and deletion"),
    (r"select", "S3 Select"),
    (r"sts|iam|assume_role|webidentity|session_token", "IAM"),
    (r"append", "RGW extension (append)"),
    (r"storage_class|sc_", "storage classes"),
    (r"account_usage|_usage|stats", "RGW extension (usage)"),
]

# What a test's premise uses that is out of scope, first match wins.
OUT_PREMISES = [
    (r"ACL=|_acl\(|acl\(|Grant[A-Z]|AccessControlPolicy|_setup_access\(", "ACLs"),
    (r"get_alt_client|get_tenant_client|alt_client|tenant_client", "other users (Loam has one S3 owner)"),
    (r"once we have learned how to", "the test cannot send what it means to (its own TODO: it changes headers before signing)"),
    (r"public_access_block|PublicAccessBlock", "bucket configuration"),
    (r"put_bucket_policy|[\"']policy[\"']|\bpolicy_document\b", "policies"),
    (r"put_bucket_versioning|check_configure_versioning_retry|VersionId=", "versioning"),
    (r"ObjectLock|put_object_retention|put_object_legal_hold", "object lock"),
    (r"SSECustomer|ServerSideEncryption|SSEKMS", "encryption"),
    (r"Tagging=|put_object_tagging|put_bucket_tagging", "tagging"),
    (r"put_bucket_lifecycle", "lifecycle"),
    (r"put_bucket_cors|put_bucket_logging|put_bucket_website", "bucket configuration"),
    (r"LocationConstraint|delete_bucket\(", "bucket creation and deletion"),
]


def premises(src_dirs):
    """{test name: the text of its decorators, body, and the `_test_*` functions it calls (test bodies shared
    by several tests)}. Not other helpers: they take optional arguments for features (tags, versions) that
    most of their callers do not use."""
    texts = {}
    for d in src_dirs:
        for path in pathlib.Path(d).glob("test_*.py"):
            source = path.read_text()
            tree = ast.parse(source)
            lines = source.splitlines()
            funcs = {}
            for n in tree.body:
                if isinstance(n, ast.FunctionDef):
                    first = min([n.lineno] + [d.lineno for d in n.decorator_list]) - 1
                    # The comment lines just above the decorators belong to the test too (TODOs).
                    while first > 0 and lines[first - 1].lstrip().startswith("#"):
                        first -= 1
                    funcs[n.name] = ("\n".join(lines[first:n.end_lineno]), n)
            for name, (text, node) in funcs.items():
                if not name.startswith("test_"):
                    continue
                called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
                shared = [funcs[c][0] for c in sorted(called) if c.startswith("_test_") and c in funcs]
                texts[name] = "\n".join([text] + shared)
    return texts


# In-scope categories by name, first match wins.
CATEGORIES = [
    (r"multipart|upload_part|list_parts|abort", "multipart"),
    (r"copy", "copy"),
    (r"checksum|md5|content_sha256|bad_digest|_digest", "checked uploads"),
    (r"if_match|if_none|if_modified|if_unmodified|conditional|_cond", "conditions"),
    (r"metadata|meta_|content_type|cache_control|expires|content_encoding|content_disposition|response_", "metadata"),
    (r"list|prefix|delimiter|marker|continuation|max_keys|fetchowner|encoding|startafter", "listing"),
    (r"range", "ranges"),
    (r"presign|post_object|signature|auth|v2|anon|headers_|_header|bad_|_content_length|_date|expect|_ua_", "protocol and auth"),
    (r"delete", "delete"),
    (r".*", "objects"),
]


def markexpr():
    return " and ".join(f"not {m}" for m in sorted(OUT_MARKERS))


def classify(name, premise=""):
    """(in_scope, category or reason) of test `name`, whose premise (source) is `premise`."""
    short = name.removeprefix("test_")
    for pattern, reason in OUT_NAMES:
        if re.search(pattern, short):
            return False, reason
    for pattern, reason in OUT_PREMISES:
        if re.search(pattern, premise):
            return False, reason
    for pattern, category in CATEGORIES:
        if re.search(pattern, short):
            return True, category
    raise AssertionError("unreachable")


def summary(path, src_dirs):
    texts = premises(src_dirs)
    rows = {}
    failed = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name").split("[")[0]
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        if outcome == "skipped":
            continue
        inside, cat = classify(name, texts.get(name, ""))
        row = rows.setdefault((inside, cat), [0, 0])
        row[0] += outcome == "passed"
        row[1] += 1
        if inside and outcome == "failed":
            failed.append(f"{cat}: {name}")
    print("| category | in scope | passed | run | rate |\n| --- | --- | --- | --- | --- |")
    tot = [0, 0]
    for (inside, cat), (ok, n) in sorted(rows.items(), key=lambda r: (not r[0][0], r[0][1])):
        print(f"| {cat} | {'yes' if inside else 'no'} | {ok} | {n} | {100 * ok / n:.0f}% |")
        if inside:
            tot[0] += ok
            tot[1] += n
    if tot[1]:
        print(f"| **in scope, all** | yes | {tot[0]} | {tot[1]} | **{100 * tot[0] / tot[1]:.1f}%** |")
    print("\nIn-scope failures:")
    for f in sorted(failed):
        print(f"- {f}")


if __name__ == "__main__":
    if sys.argv[1] == "markexpr":
        print(markexpr())
    else:
        summary(sys.argv[2], sys.argv[3:])
