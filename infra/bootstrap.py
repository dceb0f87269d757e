#!/usr/bin/env python3
"""stockstream host bootstrap, run once by cloud-init (infra/stockstream.yaml embeds this file).

Fetches the release (https, or s3:// with the instance role), checks its SHA-256, writes what only
the running account knows (MSK brokers, SASL/SCRAM credentials from Secrets Manager) into
/etc/stockstream, sets up log forwarding and the agents (aws/setup-host.sh of the release),
installs the release in AWS mode and enables the services. Python's standard library only: AWS
calls are signed here (SigV4).
For tests: STOCKSTREAM_BOOTSTRAP_ROOT installs below another root and
STOCKSTREAM_BOOTSTRAP_DRY_RUN=1 leaves agents and systemd alone; AWS_ENDPOINT_URL and
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY replace the AWS endpoints and the instance role.
"""
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(os.environ.get("STOCKSTREAM_BOOTSTRAP_ROOT", "/"))
DRY_RUN = os.environ.get("STOCKSTREAM_BOOTSTRAP_DRY_RUN") == "1"
ETC = ROOT / "etc/stockstream"
IMDS = "http://169.254.169.254/latest"


def log(message):
    print(f"stockstream-bootstrap: {message}", flush=True)


def settings():
    values = {}
    for line in (ETC / "bootstrap.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def retried(what, action):
    for attempt in range(1, 6):
        try:
            return action()
        except OSError as error:
            if attempt == 5:
                raise SystemExit(f"stockstream-bootstrap: {what} failed: {error}")
            log(f"{what} failed ({error}), attempt {attempt} of 5")
            time.sleep(2**attempt)


def fetch(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def credentials():
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        env = os.environ
        return env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
    token = fetch(IMDS + "/api/token", "PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    header = {"X-aws-ec2-metadata-token": token.decode()}
    path = "/meta-data/iam/security-credentials/"
    role = fetch(IMDS + path, headers=header).decode().split()[0]
    found = json.loads(fetch(IMDS + path + role, headers=header))
    return found["AccessKeyId"], found["SecretAccessKey"], found["Token"]


def endpoint(service, region):
    override = os.environ.get("AWS_ENDPOINT_URL")
    return override.rstrip("/") if override else f"https://{service}.{region}.amazonaws.com"


def aws(service, region, method, url, body=b"", headers=None):
    """One SigV4-signed request; returns the response body."""
    key, secret, token = credentials()
    parts = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    signed.update({"host": parts.netloc, "x-amz-date": stamp})
    signed["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    if token:
        signed["x-amz-security-token"] = token
    names = sorted(signed)
    # S3 signs the path as sent; other services sign it encoded once more.
    path = parts.path if service == "s3" else urllib.parse.quote(parts.path, safe="/")
    canonical = "\n".join([
        method, path, parts.query,
        "".join(f"{name}:{signed[name].strip()}\n" for name in names),
        ";".join(names), signed["x-amz-content-sha256"],
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, digest])
    signing_key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                               f"SignedHeaders={';'.join(names)}, Signature={signature}")
    del signed["host"]
    return fetch(url, method, body or None, signed)


def release(values):
    url, region = values["RELEASE_URL"], values["AWS_REGION"]
    if url.startswith("s3://"):
        bucket, key = url[len("s3://"):].split("/", 1)
        quoted = urllib.parse.quote(key)
        override = os.environ.get("AWS_ENDPOINT_URL")
        address = (f"{override.rstrip('/')}/{bucket}/{quoted}" if override
                   else f"https://{bucket}.s3.{region}.amazonaws.com/{quoted}")
        tarball = retried("downloading the release", lambda: aws("s3", region, "GET", address))
    else:
        tarball = retried("downloading the release", lambda: fetch(url))
    digest = hashlib.sha256(tarball).hexdigest()
    if digest != values["RELEASE_SHA256"]:
        raise SystemExit(f"stockstream-bootstrap: {url} has SHA-256 {digest}, "
                         f"not {values['RELEASE_SHA256']}")
    target = ROOT / "opt/stockstream"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".tar.gz") as file:
        file.write(tarball)
        file.flush()
        listing = subprocess.run(["tar", "-tzf", file.name], check=True, capture_output=True, text=True)
        top = {entry.split("/", 1)[0] for entry in listing.stdout.split()}
        if len(top) != 1 or any(entry.startswith("/") or ".." in entry.split("/")
                                for entry in listing.stdout.split()):
            raise SystemExit("stockstream-bootstrap: the release is not one stockstream-* folder")
        subprocess.run(["tar", "-xzf", file.name, "-C", str(target)], check=True)
    log(f"release {url} checked and unpacked")
    return target / top.pop()


def kafka(values):
    """MSK brokers into stockstream.env; librdkafka security settings into stockstream.toml."""
    region, protocol = values["AWS_REGION"], values["KAFKA_SECURITY_PROTOCOL"]
    env_file = ETC / "stockstream.env"
    if values.get("MSK_CLUSTER_ARN"):
        arn = urllib.parse.quote(values["MSK_CLUSTER_ARN"], safe="")
        url = f"{endpoint('kafka', region)}/v1/clusters/{arn}/bootstrap-brokers"
        answer = json.loads(retried("asking MSK for its brokers", lambda: aws("kafka", region, "GET", url)))
        field = {"SASL_SSL": "bootstrapBrokerStringSaslScram", "SSL": "bootstrapBrokerStringTls"}
        brokers = answer.get(field.get(protocol, "bootstrapBrokerString"))
        if not brokers:
            raise SystemExit(f"stockstream-bootstrap: MSK has no {protocol} brokers: {answer}")
        lines = [line for line in env_file.read_text().splitlines()
                 if not line.startswith("STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS=")]
        lines.insert(0, f"STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS={brokers}")
        env_file.write_text("\n".join(lines) + "\n")
        log(f"MSK brokers: {brokers}")
    options = {"security.protocol": protocol}
    if protocol == "SASL_SSL":
        arn = values.get("KAFKA_SCRAM_SECRET_ARN")
        if not arn:
            raise SystemExit("stockstream-bootstrap: SASL_SSL needs KafkaScramSecretArn (or CreateMskCluster)")
        body = json.dumps({"SecretId": arn}).encode()
        headers = {"X-Amz-Target": "secretsmanager.GetSecretValue",
                   "Content-Type": "application/x-amz-json-1.1"}
        answer = retried("reading the SCRAM secret", lambda: aws(
            "secretsmanager", region, "POST", endpoint("secretsmanager", region) + "/", body, headers))
        secret = json.loads(json.loads(answer)["SecretString"])
        options.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": secret["username"],
                        "sasl.password": secret["password"]})
    text = "# Written by stockstream-bootstrap: librdkafka security settings.\n[kafka.options]\n"
    text += "".join(f'"{key}" = {json.dumps(value)}\n' for key, value in options.items())
    toml = ETC / "stockstream.toml"
    toml.touch(mode=0o600)
    toml.write_text(text)
    log(f"Kafka security: {protocol}")


def probe_targets(values):
    """The probe watches the services this host enables (SERVICES), no others."""
    enabled = values["SERVICES"].split()
    path = ETC / "probe.env"
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("STOCKSTREAM_PROBE_TARGETS="):
            targets = line.split("=", 1)[1].split()
            kept = [target for target in targets if target.split("=", 1)[0] in enabled]
            line = "STOCKSTREAM_PROBE_TARGETS=" + " ".join(kept)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def run(command):
    log("running " + " ".join(command))
    subprocess.run(command, check=True)


def main():
    values = settings()
    folder = release(values)
    kafka(values)
    probe_targets(values)
    install = [str(folder / "install.sh"), "--mode", "aws", "--root", str(ROOT)]
    setup = [str(folder / "aws/setup-host.sh"), "--region", values["AWS_REGION"],
             "--log-group", values["LOG_GROUP"], "--root", str(ROOT)]
    if DRY_RUN:
        run(install)
        run(setup + ["--no-agents"])
        log("dry run: agents and services left alone")
        return
    run(setup)
    run(install + ["--enable", "--services", values["SERVICES"]])
    log("done")


if __name__ == "__main__":
    sys.exit(main())
