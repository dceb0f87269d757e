"""Checks of the rendered stack that need no AWS API (used by check_stack.py): the env files the
user data writes against deploy/env/aws/ and the stack's values, the instance role against what
the services call, and the probe's output (deploy/stockstream-probe, run for real against
stand-in services) through the template's metric filters.
"""
import fnmatch
import http.server
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def fail(message):
    raise SystemExit(f"check_stack: {message}")


def parse_env(text):
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def check_env_files(files, stack):
    """Every AWS-mode example file is written with the same keys, and the values are the stack's."""
    written = {}
    for example in sorted((ROOT / "deploy/env/aws").glob("*.env")):
        path = f"/etc/stockstream/{example.name}"
        if path not in files:
            fail(f"the user data does not write {path} (deploy/env/aws/{example.name} has it)")
        values = parse_env(files[path]["content"])
        keys, wanted = sorted(values), sorted(parse_env(example.read_text()))
        if keys != wanted:
            fail(f"{path}: the user data sets {keys}, deploy/env/aws/{example.name} sets {wanted}")
        if files[path]["permissions"] != "0600":
            fail(f"{path} is not root-only")
        written[example.name] = values
    expected = {
        "stockstream.env": {
            "STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS": stack["brokers"], "STOCKSTREAM__LAKE__BACKEND": "s3",
            "STOCKSTREAM__LAKE__BUCKET": stack["bucket"], "STOCKSTREAM__LAKE__PREFIX": stack["prefix"],
            "STOCKSTREAM__LAKE__REGION": stack["region"],
        },
        "glue-crawler.env": {
            "STOCKSTREAM__CRAWLER__MODE": "glue", "STOCKSTREAM__CRAWLER__STRATEGY": stack["strategy"],
            "STOCKSTREAM__CRAWLER__DATABASE": stack["database"], "STOCKSTREAM__CRAWLER__REGION": stack["region"],
            "STOCKSTREAM__CRAWLER__CRAWLER_NAME": stack["crawler"],
            "STOCKSTREAM__CRAWLER__CRAWLER_ROLE": stack["crawler_role"],
        },
        "query-api.env": {
            "STOCKSTREAM__QUERY__ENGINE": "athena", "STOCKSTREAM__QUERY__CATALOG": "glue",
            "STOCKSTREAM__QUERY__DATABASE": stack["database"],
            "STOCKSTREAM__QUERY__GLUE__REGION": stack["region"],
            "STOCKSTREAM__QUERY__ATHENA__WORKGROUP": stack["workgroup"],
            "STOCKSTREAM__QUERY__ATHENA__OUTPUT_LOCATION": stack["output"],
        },
    }
    for name, pairs in expected.items():
        for key, value in pairs.items():
            if written[name].get(key) != value:
                fail(f"{name}: {key}={written[name].get(key)!r}, expected {value!r}")
    return written


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _conditions_hold(conditions, context):
    for operator, pairs in conditions.items():
        for key, patterns in pairs.items():
            if key not in context:
                return False
            match = fnmatch.fnmatchcase if operator == "StringLike" else str.__eq__
            if not any(match(context[key], pattern) for pattern in _as_list(patterns)):
                return False
    return True


def allowed(documents, action, resource, context=None):
    for document in documents.values():
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            if not any(fnmatch.fnmatchcase(action, pattern) for pattern in _as_list(statement["Action"])):
                continue
            if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"])):
                continue
            if _conditions_hold(statement.get("Condition", {}), context or {}):
                return True
    return False


def check_iam(documents, s):
    """The instance role allows what the services call, and nothing beyond their resources."""
    for document in documents.values():
        for statement in document["Statement"]:
            for action in _as_list(statement["Action"]):
                if action == "*" or action.endswith(":*"):
                    fail(f"wildcard action {action} in {statement}")
            if "*" in _as_list(statement["Resource"]):
                fail(f"resource * in {statement}")
    bucket = f"arn:aws:s3:::{s['bucket']}"
    lake = f"{bucket}/{s['prefix']}"
    glue = f"arn:aws:glue:{s['region']}:{s['account']}"
    stream = f"arn:aws:logs:{s['region']}:{s['account']}:log-group:{s['log_group']}:log-stream:i-0abc/s3-sink"
    workgroup = f"arn:aws:athena:{s['region']}:{s['account']}:workgroup/{s['workgroup']}"
    crawler = f"{glue}:crawler/{s['crawler'] or 'stockstream-lake'}"
    needed = [
        ("s3:PutObject", f"{lake}/quotes/symbol=HSI/year=1987/quotes+0+1+2.parquet", None),
        ("s3:GetObject", f"{lake}/quotes/symbol=HSI/year=1987/quotes+0+1+2.parquet", None),
        ("s3:PutObject", f"{lake}/_stockstream/intents/quotes/0/00000000000000000001.json", None),
        ("s3:DeleteObject", f"{lake}/_stockstream/intents/quotes/0/00000000000000000001.json", None),
        ("s3:AbortMultipartUpload", f"{lake}/quotes/symbol=HSI/year=1987/big.parquet", None),
        ("s3:ListBucket", bucket, {"s3:prefix": f"{s['prefix']}/quotes/symbol=HSI/"}),
        ("s3:ListBucket", bucket, {"s3:prefix": "athena-results/"}),
        ("s3:GetBucketLocation", bucket, None),
        ("s3:PutObject", f"{bucket}/athena-results/q-1.csv", None),
        ("s3:GetObject", f"{bucket}/athena-results/q-1.csv", None),
        ("s3:GetObject", f"arn:aws:s3:::{s['release']}", None),
        ("glue:GetDatabase", f"{glue}:database/{s['database']}", None),
        ("glue:GetTable", f"{glue}:table/{s['database']}/quotes", None),
        ("glue:CreateTable", f"{glue}:table/{s['database']}/quotes", None),
        ("glue:UpdateTable", f"{glue}:table/{s['database']}/quotes", None),
        ("glue:BatchCreatePartition", f"{glue}:table/{s['database']}/quotes", None),
        ("glue:GetPartitions", f"{glue}:catalog", None),
        ("athena:StartQueryExecution", workgroup, None),
        ("athena:GetQueryResults", workgroup, None),
        ("athena:StopQueryExecution", workgroup, None),
        ("logs:PutLogEvents", stream, None),
        ("secretsmanager:GetSecretValue", s["secret"], None),
    ]
    refused = [
        ("s3:DeleteObject", f"{lake}/quotes/symbol=HSI/year=1987/quotes+0+1+2.parquet", None),
        ("s3:PutObject", f"{bucket}/elsewhere/x", None),
        ("s3:GetObject", "arn:aws:s3:::another-bucket/lake/x", None),
        ("s3:ListBucket", bucket, {"s3:prefix": ""}),
        ("s3:PutBucketPolicy", bucket, None),
        ("glue:DeleteTable", f"{glue}:table/{s['database']}/quotes", None),
        ("glue:GetTable", f"{glue}:table/other_database/quotes", None),
        ("athena:StartQueryExecution", f"arn:aws:athena:{s['region']}:{s['account']}:workgroup/primary", None),
        ("iam:PassRole", f"arn:aws:iam::{s['account']}:role/anything", None),
        ("logs:PutLogEvents", f"arn:aws:logs:{s['region']}:{s['account']}:log-group:/other:log-stream:x", None),
        ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{s['region']}:{s['account']}:secret:other", None),
    ]
    if s["crawler"]:
        needed.append(("glue:StartCrawler", crawler, None))
    else:
        refused.append(("glue:StartCrawler", crawler, None))
    for action, resource, context in needed:
        if not allowed(documents, action, resource, context):
            fail(f"the host role does not allow {action} on {resource} {context or ''}")
    for action, resource, context in refused:
        if allowed(documents, action, resource, context):
            fail(f"the host role allows {action} on {resource} {context or ''}")


class _Service(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = self.server.answers.get(self.path, (404, ""))
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_):
        pass


def _serve(answers):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    server.answers = answers
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _filter_matches(pattern, event):
    clauses = pattern.strip().strip("{}").split("&&")
    for clause in clauses:
        found = re.fullmatch(r'\s*\$\.(\w+)\s*(=|!=|>=|<=|>|<)\s*("[^"]*"|-?\d+(?:\.\d+)?)\s*', clause)
        if not found:
            fail(f"metric filter clause {clause!r} is not understood by the check")
        field, operator, literal = found.groups()
        if field not in event:
            return False
        value = event[field]
        wanted = json.loads(literal)
        if isinstance(wanted, str) != isinstance(value, str):
            return False
        outcome = {"=": value == wanted, "!=": value != wanted, ">": value > wanted,
                   "<": value < wanted, ">=": value >= wanted, "<=": value <= wanted}[operator]
        if not outcome:
            return False
    return True


def _metrics(filters, lines):
    totals = {}
    for line in lines:
        event = json.loads(line)
        for metric_filter in filters:
            if _filter_matches(metric_filter["FilterPattern"], event):
                for transformation in metric_filter["MetricTransformations"]:
                    value = transformation["MetricValue"]
                    number = event[value[2:]] if value.startswith("$.") else float(value)
                    name = transformation["MetricName"]
                    totals[name] = totals.get(name, 0) + number
    return totals


def check_probe_filters(filters, probe):
    """The real probe against stand-in services, its lines through the template's filters."""
    ingest = {"/health/readyz": (200, "{}"), "/metrics": (200, "stockstream_ingest_dead_letters_total 3\n")}
    sink = {"/health/readyz": (503, "{}"), "/metrics": (200, (
        "# TYPE stockstream_sink_consumer_lag_records gauge\n"
        'stockstream_sink_consumer_lag_records{partition="0"} 5\n'
        'stockstream_sink_consumer_lag_records{partition="1"} 7\n'
        "stockstream_sink_dead_letters_total 2\n"))}
    query = {"/health/readyz": (200, "{}")}
    servers = [_serve(answers) for answers in (ingest, sink, query)]
    closed = _serve({})
    closed_port = closed.server_address[1]
    closed.shutdown()
    closed.server_close()
    ports = [server.server_address[1] for server in servers]
    targets = (f"ingest=127.0.0.1:{ports[0]} s3-sink=127.0.0.1:{ports[1]} "
               f"glue-crawler=127.0.0.1:{closed_port} query-api=127.0.0.1:{ports[2]}")
    with tempfile.TemporaryDirectory() as state:
        def probe_once():
            env = dict(os.environ, STOCKSTREAM_PROBE_TARGETS=targets, STATE_DIRECTORY=state,
                       STOCKSTREAM_PROBE_TIMEOUT="2")
            done = subprocess.run([str(probe)], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                fail(f"the probe failed: {done.stderr}")
            return _metrics(filters, done.stdout.splitlines())

        first = probe_once()
        wanted = {"ServicesNotReady": 2, "ReadinessProbes": 4, "ConsumerLagRecords": 12, "DeadLetters": 5}
        if first != wanted:
            fail(f"probe metrics {first}, expected {wanted}")
        ingest["/metrics"] = (200, "stockstream_ingest_dead_letters_total 4\n")
        second = probe_once()
        if second.get("DeadLetters") != 1:
            fail(f"one more dead letter, the probe says {second}")
        sink["/metrics"] = (200, sink["/metrics"][1].replace("dead_letters_total 2", "dead_letters_total 1"))
        third = probe_once()
        if third.get("DeadLetters") != 1:
            fail(f"after a sink restart (its counter 2 -> 1), the probe says {third}")
    for server in servers:
        server.shutdown()
        server.server_close()


def check_signer(script):
    """The bootstrap's SigV4 signer (infra/bootstrap.py, as embedded in the user data) signs
    exactly as botocore does, for the three calls it makes: S3 GetObject, Secrets Manager
    GetSecretValue, MSK GetBootstrapBrokers (a cluster ARN in the path)."""
    import datetime as real_datetime
    import importlib.machinery
    import importlib.util
    import types
    import urllib.parse

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    loader = importlib.machinery.SourceFileLoader("stockstream_bootstrap", str(script))
    spec = importlib.util.spec_from_loader("stockstream_bootstrap", loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fixed = real_datetime.datetime(2026, 3, 2, 12, 30, 45, tzinfo=real_datetime.timezone.utc)

    class FixedClock(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    module.datetime = types.SimpleNamespace(datetime=FixedClock, timezone=real_datetime.timezone)
    module.credentials = lambda: ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    sent = {}

    def capture(url, method="GET", body=None, headers=None):
        sent.update(url=url, method=method, body=body, headers=headers)
        return b"{}"

    module.fetch = capture
    original_clock = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: fixed.replace(tzinfo=None)
    credentials = botocore.credentials.Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    arn = urllib.parse.quote("arn:aws:kafka:eu-west-1:123456789012:cluster/stockstream/0a1b-2c", safe="")
    cases = [
        ("s3", "GET", "https://releases.s3.eu-west-1.amazonaws.com/v/stockstream-0.1.0%2Bx.tar.gz", b"", {}),
        ("secretsmanager", "POST", "https://secretsmanager.eu-west-1.amazonaws.com/",
         b'{"SecretId": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_x"}',
         {"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1"}),
        ("kafka", "GET", f"https://kafka.eu-west-1.amazonaws.com/v1/clusters/{arn}/bootstrap-brokers", b"", {}),
    ]
    try:
        for service, method, url, body, headers in cases:
            module.aws(service, "eu-west-1", method, url, body, headers)
            ours = sent["headers"]
            request = botocore.awsrequest.AWSRequest(
                method=method, url=url, data=body,
                headers={**headers, "X-Amz-Content-SHA256": ours["x-amz-content-sha256"]})
            signer = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
            signer(credentials, service, "eu-west-1").add_auth(request)
            if ours["authorization"] != request.headers["Authorization"]:
                fail(f"the bootstrap signs {service} {method} {url} as\n  {ours['authorization']}\n"
                     f"botocore as\n  {request.headers['Authorization']}")
    finally:
        botocore.auth.get_current_datetime = original_clock
