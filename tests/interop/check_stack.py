"""Deploys infra/stockstream.yaml to moto's CloudFormation and reads the stack back through each
service's own API (called by tests/tests/infra_stack.rs, which compares the Glue side with the real
catalog service).

    check_stack.py ENDPOINT TEMPLATE STRATEGY RELEASE_TARBALL SCRATCH_DIR

1. deploys the template (parameters: a VPC, subnet, SCRAM secret and release made here) and
   asserts exactly which resource types moto's CloudFormation skips;
2. reads back the IAM role and its policies, the instance profile, the security group, the
   launch template, the instance and its user data, and the log group;
3. creates what moto skips (Glue database, table and crawler, Athena workgroup, bucket policy,
   metric filters, alarms) from the template's own resolved properties, through their APIs;
4. checks the rendered user data: `cloud-init schema`, the env files against deploy/env/aws/,
   the values against the stack, the instance role against what the services call;
5. with the partitions strategy (the bootstrap is the same in every strategy), runs the user
   data's bootstrap against moto into SCRATCH_DIR (release from S3, SCRAM secret from Secrets
   Manager) and compares its SigV4 signatures with botocore's (moto checks none);
   runs the probe's JSON lines through the template's metric filters.

Prints one JSON line with what the Rust side needs (bucket, prefix, database, crawler, ...).
"""
import ast
import base64
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import boto3
import yaml
from cfnlint.decode.cfn_yaml import load as load_template

from cfn_resolve import Resolver
from stack_checks import check_env_files, check_iam, check_probe_filters, check_signer

REGION = "us-east-1"
ACCOUNT = "123456789012"
DEBIAN_AMI = "/aws/service/debian/release/bookworm/latest/amd64"
MOTO_AMI = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# Resource types moto 5.2.5's CloudFormation does not create (it logs a warning, lists the
# resource without a type and reports CREATE_COMPLETE). A new gap, or a gap moto closes, fails
# here: update this set and what step 3 creates by hand.
MOTO_SKIPS = {
    "AWS::S3::BucketPolicy", "AWS::Glue::Database", "AWS::Glue::Table", "AWS::Glue::Crawler",
    "AWS::Athena::WorkGroup", "AWS::Logs::MetricFilter", "AWS::CloudWatch::Alarm",
}


def fail(message):
    sys.exit(f"check_stack: {message}")


def expect(condition, message):
    if not condition:
        fail(message)


class Aws:
    def __init__(self, endpoint):
        self.endpoint = endpoint

    def __getattr__(self, service):
        client = boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                              aws_access_key_id="stockstream-test",
                              aws_secret_access_key="stockstream-test")
        setattr(self, service, client)
        return client


def fill_skipped(node, resolver, skipped):
    """moto leaves `${Name}` of a resource it skipped unsubstituted; CloudFormation puts in the
    resource's Ref (for the Glue database and the Athena workgroup: their names)."""
    if isinstance(node, dict):
        return {key: fill_skipped(value, resolver, skipped) for key, value in node.items()}
    if isinstance(node, list):
        return [fill_skipped(item, resolver, skipped) for item in node]
    if isinstance(node, str):
        for name in skipped:
            if "${" + name + "}" in node:
                node = node.replace("${" + name + "}", str(resolver.ref(name)))
    return node


def prepare_account(aws, tarball, upload):
    """The VPC, subnet, SCRAM secret and (when `upload`, for the bootstrap) the release in S3
    that the stack's parameters name."""
    vpc = aws.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    secret = aws.secretsmanager.create_secret(
        Name="AmazonMSK_stockstream-test",
        SecretString=json.dumps({"username": "stockstream", "password": "scram-secret-9"}))["ARN"]
    aws.s3.create_bucket(Bucket="stockstream-releases")
    data = pathlib.Path(tarball).read_bytes()
    if upload:
        aws.s3.put_object(Bucket="stockstream-releases", Key=f"v/{pathlib.Path(tarball).name}", Body=data)
    release_url = f"s3://stockstream-releases/v/{pathlib.Path(tarball).name}"
    return {
        "VpcId": vpc, "SubnetId": subnet, "ApiCidr": "203.0.113.0/24",
        "ReleaseUrl": release_url, "ReleaseSha256": hashlib.sha256(data).hexdigest(),
        "KafkaBootstrapServers": "b-1.msk.example:9096,b-2.msk.example:9096",
        "KafkaSecurityProtocol": "SASL_SSL", "KafkaScramSecretArn": secret,
        "AlarmEmail": "ops@example.com",
    }


def deploy(aws, template_path, stack, parameters):
    body = pathlib.Path(template_path).read_text()
    # moto resolves an SSM-typed parameter's default even when a value is given, and holds no
    # Debian parameter (nor accepts a reserved /aws/ name): for moto only, the default names one
    # of the Amazon Linux parameters moto ships. Nothing else in the template changes.
    expect(body.count(f"Default: {DEBIAN_AMI}") == 1, "the ImageId default is not Debian 12's parameter")
    body = body.replace(f"Default: {DEBIAN_AMI}", f"Default: {MOTO_AMI}")
    aws.cloudformation.create_stack(
        StackName=stack, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()])
    found = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    expect(found["StackStatus"] == "CREATE_COMPLETE", f"stack {stack}: {found['StackStatus']}")
    listed = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in listed
            if item.get("LogicalResourceId")}, {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def resolver_for(aws, template, stack, parameters, physical):
    def get_att(resource, attribute):
        kind = template["Resources"][resource]["Type"]
        if (kind, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:aws:s3:::{physical[resource]}"
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return aws.iam.get_role(RoleName=physical[resource])["Role"]["Arn"]
        if (kind, attribute) == ("AWS::EC2::Instance", "PublicDnsName"):
            found = aws.ec2.describe_instances(InstanceIds=[physical[resource]])
            # Empty without a public IP, as CloudFormation's attribute is.
            return found["Reservations"][0]["Instances"][0].get("PublicDnsName", "")
        if (kind, attribute) == ("AWS::EC2::Instance", "PrivateIp"):
            found = aws.ec2.describe_instances(InstanceIds=[physical[resource]])
            return found["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        if (kind, attribute) == ("AWS::EC2::LaunchTemplate", "LatestVersionNumber"):
            found = aws.ec2.describe_launch_templates(LaunchTemplateIds=[physical[resource]])
            return str(found["LaunchTemplates"][0]["LatestVersionNumber"])
        raise KeyError(f"GetAtt {resource}.{attribute} is not known to the check")

    pseudo = {"AWS::StackName": stack, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
              "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    return Resolver(template, parameters, pseudo, physical, get_att)


def check_skips(template, resolver, physical):
    expected = {name for name in template["Resources"] if resolver.exists(name)}
    skipped = expected - set(physical)
    types = {template["Resources"][name]["Type"] for name in skipped}
    wanted = {kind for kind in MOTO_SKIPS
              if any(template["Resources"][name]["Type"] == kind for name in expected)}
    expect(types == wanted, f"moto skipped {sorted(types)}, expected exactly {sorted(wanted)}")
    unexpected = set(physical) - expected
    expect(not unexpected, f"moto created resources whose condition is false: {sorted(unexpected)}")
    return skipped


def check_role(aws, resolver, physical, skipped):
    role = aws.iam.get_role(RoleName=physical["HostRole"])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    principals = [statement["Principal"]["Service"] for statement in trust["Statement"]]
    expect(principals == ["ec2.amazonaws.com"], f"host role trusts {principals}")
    wanted = {policy["PolicyName"]: policy["PolicyDocument"]
              for policy in resolver.properties("HostRole")["Policies"]}
    names = aws.iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    expect(sorted(names) == sorted(wanted), f"host role policies {names}, expected {sorted(wanted)}")
    documents = {}
    for name in names:
        document = aws.iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            # moto stores a CloudFormation role's inline policy as Python's repr of the document.
            document = ast.literal_eval(document)
        # moto keeps an `!If [..., !Ref AWS::NoValue]` list item as null; CloudFormation drops it.
        document["Statement"] = [statement for statement in document["Statement"] if statement is not None]
        document = fill_skipped(document, resolver, skipped)
        expect(document == wanted[name], f"policy {name} reads back as {document}, not {wanted[name]}")
        documents[name] = document
    attached = [p["PolicyArn"] for p in aws.iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]]
    # moto's CloudFormation ignores a role's ManagedPolicyArns: the resolved template says it.
    expect(attached == [], f"moto now attaches managed policies ({attached}): check them here")
    managed = resolver.properties("HostRole")["ManagedPolicyArns"]
    expect(managed == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"], f"managed policies {managed}")
    profile = aws.iam.get_instance_profile(InstanceProfileName=physical["HostInstanceProfile"])["InstanceProfile"]
    expect([r["RoleName"] for r in profile["Roles"]] == [role["RoleName"]], "the instance profile holds the host role")
    return role, profile, documents


def check_security_group(aws, resolver, physical, parameters):
    group = aws.ec2.describe_security_groups(GroupIds=[physical["HostSecurityGroup"]])["SecurityGroups"][0]
    expect(group["VpcId"] == parameters["VpcId"], "the security group is in the VPC")
    ingress = [(r["IpProtocol"], r["FromPort"], r["ToPort"], [i["CidrIp"] for i in r["IpRanges"]])
               for r in group["IpPermissions"]]
    expect(ingress == [("tcp", 8080, 8080, [parameters["ApiCidr"]])],
           f"ingress {ingress}: only the API port from ApiCidr (SSH and ingest closed by default)")
    # moto's CloudFormation ignores SecurityGroupEgress (the group keeps EC2's allow-all rule):
    # the resolved template's rules are checked instead.
    egress = [(r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) for r in group["IpPermissionsEgress"]]
    expect(egress == [("-1", None, None)], f"moto now applies SecurityGroupEgress ({egress}): check it here")
    rules = resolver.properties("HostSecurityGroup")["SecurityGroupEgress"]
    egress = sorted((r["IpProtocol"], int(r["FromPort"]), int(r["ToPort"]), r["CidrIp"]) for r in rules)
    expect(egress == [("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0"),
                      ("tcp", 9092, 9098, "0.0.0.0/0")], f"egress {egress}")
    return group


def check_host(aws, resolver, physical, profile, ami, skipped):
    reservation = aws.ec2.describe_instances(InstanceIds=[physical["Host"]])["Reservations"][0]
    instance = reservation["Instances"][0]
    expect(instance["ImageId"] == ami, f"host image {instance['ImageId']}, expected {ami}")
    expect(instance["SubnetId"] == resolver.values["SubnetId"], "host in SubnetId")
    expect(instance["InstanceType"] == "t3.medium", f"host type {instance['InstanceType']}")
    associations = aws.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}])["IamInstanceProfileAssociations"]
    expect([a["IamInstanceProfile"]["Arn"] for a in associations] == [profile["Arn"]],
           f"host instance profile {associations}")
    encoded = aws.ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")["UserData"]["Value"]
    user_data = fill_skipped(base64.b64decode(encoded).decode(), resolver, skipped)
    wanted = base64.b64decode(resolver.properties("Host")["UserData"]).decode()
    expect(user_data == wanted, "the host's user data is not the template's, resolved")
    expect(user_data.startswith("#cloud-config\n"), "user data is a #cloud-config")
    template_data = aws.ec2.describe_launch_template_versions(
        LaunchTemplateId=physical["HostLaunchTemplate"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    options = template_data["MetadataOptions"]
    expect(options["HttpTokens"] == "required" and options["HttpPutResponseHopLimit"] == 1,
           f"launch template metadata options {options}: IMDSv2 only")
    volume = template_data["BlockDeviceMappings"][0]["Ebs"]
    expect(volume["Encrypted"] and volume["VolumeType"] == "gp3", f"root volume {volume}")
    return user_data


def check_outputs(template, resolver, skipped, outputs):
    """Outputs read back as the template resolves them. moto drops an output that names a resource
    it skipped and leaves `${Host.PublicDnsName}` unsubstituted: both checked from the template."""
    for name, output in template["Outputs"].items():
        if "Condition" in output and not resolver.condition(output["Condition"]):
            expect(name not in outputs, f"output {name} exists though its condition is false")
            continue
        wanted = resolver.resolve(output["Value"])
        text = json.dumps(output["Value"])
        if name not in outputs:
            expect(any(f'"{skip}' in text or "${" + skip in text for skip in skipped),
                   f"output {name} is missing, and names no resource moto skips")
        elif "Host.PublicDnsName" in text:
            expect(outputs[name] == "http://${Host.PublicDnsName}:8080", f"moto now resolves {name}: {outputs[name]}")
            expect(wanted.startswith("http://") and wanted.endswith(":8080"), f"{name} = {wanted}")
        else:
            expect(outputs[name] == wanted, f"output {name} = {outputs[name]}, template says {wanted}")


def create_skipped(aws, resolver, skipped, physical):
    """The resources moto skipped, from the template's own resolved properties."""
    created = {}
    if "GlueDatabase" in skipped:
        props = resolver.properties("GlueDatabase")
        aws.glue.create_database(CatalogId=props["CatalogId"], DatabaseInput=props["DatabaseInput"])
        physical["GlueDatabase"] = props["DatabaseInput"]["Name"]
    if "QuotesTable" in skipped:
        props = resolver.properties("QuotesTable")
        aws.glue.create_table(CatalogId=props["CatalogId"], DatabaseName=props["DatabaseName"],
                              TableInput=props["TableInput"])
        created["table"] = props["TableInput"]
    if "QuotesCrawler" in skipped:
        props = resolver.properties("QuotesCrawler")
        aws.glue.create_crawler(**props)
        physical["QuotesCrawler"] = props["Name"]
        created["crawler"] = props
    if "AthenaWorkGroup" in skipped:
        props = resolver.properties("AthenaWorkGroup")
        # CloudFormation converts a Ref'd parameter (a string) to the property's type.
        configuration = props["WorkGroupConfiguration"]
        configuration["BytesScannedCutoffPerQuery"] = int(configuration["BytesScannedCutoffPerQuery"])
        aws.athena.create_work_group(Name=props["Name"], Description=props["Description"],
                                     Configuration=props["WorkGroupConfiguration"])
        physical["AthenaWorkGroup"] = props["Name"]
        created["workgroup"] = props
    if "LakeBucketPolicy" in skipped:
        props = resolver.properties("LakeBucketPolicy")
        aws.s3.put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
        policy = json.loads(aws.s3.get_bucket_policy(Bucket=props["Bucket"])["Policy"])
        deny = policy["Statement"][0]
        expect(deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false",
               f"bucket policy {policy}: TLS only")
        # moto enforces it: this plain-HTTP request is refused. The policy is then removed again,
        # since everything else here talks plain HTTP to moto.
        try:
            aws.s3.put_object(Bucket=props["Bucket"], Key="lake/over-http", Body=b"x")
            fail("the TLS-only bucket policy let a plain-HTTP PutObject through")
        except aws.s3.exceptions.ClientError as error:
            code = error.response["ResponseMetadata"]["HTTPStatusCode"]
            expect(code == 403, f"a plain-HTTP PutObject answered {code}, not 403")
        aws.s3.delete_bucket_policy(Bucket=props["Bucket"])
    filters = []
    for name in sorted(skipped):
        if resolver.template["Resources"][name]["Type"] == "AWS::Logs::MetricFilter":
            props = resolver.properties(name)
            aws.logs.put_metric_filter(filterName=name, logGroupName=props["LogGroupName"],
                                       filterPattern=props["FilterPattern"],
                                       metricTransformations=[{
                                           "metricName": t["MetricName"], "metricNamespace": t["MetricNamespace"],
                                           "metricValue": t["MetricValue"],
                                           **({"defaultValue": float(t["DefaultValue"])} if "DefaultValue" in t else {}),
                                       } for t in props["MetricTransformations"]])
            filters.append(props)
    created["filters"] = filters
    alarms = []
    for name in sorted(skipped):
        if resolver.template["Resources"][name]["Type"] == "AWS::CloudWatch::Alarm":
            props = resolver.properties(name)
            arguments = {key: value for key, value in props.items() if key != "AlarmDescription"}
            arguments["AlarmName"] = name
            for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
                if key in arguments:
                    arguments[key] = int(arguments[key])
            arguments["Threshold"] = float(arguments["Threshold"])
            aws.cloudwatch.put_metric_alarm(**arguments)
            alarms.append(props)
    found = aws.cloudwatch.describe_alarms()["MetricAlarms"]
    expect(len(found) == len(alarms), f"{len(found)} alarms read back, {len(alarms)} created")
    created["alarms"] = alarms
    return created


def check_athena(aws, created, database):
    """What the query API's Athena engine relies on: the workgroup enforces its output location."""
    name = created["workgroup"]["Name"]
    group = aws.athena.get_work_group(WorkGroup=name)["WorkGroup"]
    configuration = group["Configuration"]
    output = configuration["ResultConfiguration"]["OutputLocation"]
    expect(configuration["EnforceWorkGroupConfiguration"], "the workgroup enforces its configuration")
    expect(configuration["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3", "engine 3")
    expect(configuration["BytesScannedCutoffPerQuery"] == 1073741824, "bytes scanned cutoff 1 GiB")
    expect(configuration["PublishCloudWatchMetricsEnabled"], "workgroup metrics in CloudWatch")
    expect(group["State"] == "ENABLED", "workgroup enabled")
    query = aws.athena.start_query_execution(
        QueryString="SELECT count(*) FROM quotes", WorkGroup=name,
        QueryExecutionContext={"Database": database})["QueryExecutionId"]
    execution = aws.athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]
    expect(execution["WorkGroup"] == name, "the query ran in the stack's workgroup")
    expect(execution["QueryExecutionContext"]["Database"] == database, "the query used the database")
    return output


def write_files(user_data):
    config = yaml.safe_load(user_data)
    return {entry["path"]: entry for entry in config["write_files"]}


def run_bootstrap(endpoint, files, scratch):
    """The user data's bootstrap, dry: release from moto S3, SCRAM secret from moto."""
    root = pathlib.Path(scratch) / "host"
    if root.exists():
        shutil.rmtree(root)
    for path, entry in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(entry["permissions"], 8))
    env = dict(os.environ, STOCKSTREAM_BOOTSTRAP_ROOT=str(root), STOCKSTREAM_BOOTSTRAP_DRY_RUN="1",
               AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="stockstream-test",
               AWS_SECRET_ACCESS_KEY="stockstream-test")
    done = subprocess.run([sys.executable, str(root / "usr/local/sbin/stockstream-bootstrap")],
                          env=env, capture_output=True, text=True)
    expect(done.returncode == 0, f"bootstrap failed:\n{done.stdout}{done.stderr}")
    toml = (root / "etc/stockstream/stockstream.toml").read_text()
    for line in ('"security.protocol" = "SASL_SSL"', '"sasl.mechanism" = "SCRAM-SHA-512"',
                 '"sasl.username" = "stockstream"', '"sasl.password" = "scram-secret-9"'):
        expect(line in toml, f"stockstream.toml lacks {line}:\n{toml}")
    for path, entry in files.items():
        if path.startswith("/etc/stockstream/") and path.endswith(".env"):
            kept = (root / path.lstrip("/")).read_text()
            expect(kept == entry["content"], f"install.sh replaced {path}")
    return root, done.stdout


def main():
    endpoint, template_path, strategy, tarball, scratch = sys.argv[1:6]
    aws = Aws(endpoint)
    template = load_template(template_path)
    parameters = prepare_account(aws, tarball, upload=strategy == "partitions")
    parameters["CatalogStrategy"] = strategy
    stack = f"stockstream-{strategy}"
    physical, outputs = deploy(aws, template_path, stack, parameters)
    ami = aws.ssm.get_parameter(Name=MOTO_AMI)["Parameter"]["Value"]
    resolver = resolver_for(aws, template, stack, parameters, physical)
    skipped = check_skips(template, resolver, physical)
    created = create_skipped(aws, resolver, skipped, physical)
    check_outputs(template, resolver, skipped, outputs)
    role, profile, documents = check_role(aws, resolver, physical, skipped)
    check_security_group(aws, resolver, physical, parameters)
    user_data = check_host(aws, resolver, physical, profile, ami, skipped)
    groups = aws.logs.describe_log_groups(logGroupNamePrefix=f"/stockstream/{stack}")["logGroups"]
    expect([(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(f"/stockstream/{stack}", 30)],
           f"log groups {groups}")
    bucket = physical["LakeBucket"]
    encryption = aws.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    expect(encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256",
           f"bucket encryption {encryption}")

    database = physical["GlueDatabase"]
    output = check_athena(aws, created, database)
    expect(output == f"s3://{bucket}/athena-results/", f"workgroup output {output}")

    user_data_file = pathlib.Path(scratch) / f"user-data-{strategy}.yaml"
    user_data_file.write_text(user_data)
    schema = shutil.which("cloud-init")
    expect(schema, "cloud-init is missing: install it with `apt-get install cloud-init` (scripts/tools.sh cloud-init)")
    checked = subprocess.run([schema, "schema", "--config-file", str(user_data_file)], capture_output=True, text=True)
    expect(checked.returncode == 0, f"cloud-init schema rejects the rendered user data:\n{checked.stdout}{checked.stderr}")
    expect(len(user_data.encode()) <= 16384, f"user data is {len(user_data.encode())} bytes; EC2 takes 16384")

    files = write_files(user_data)
    crawler_role = resolver.get_att("GlueCrawlerRole", "Arn") if "GlueCrawlerRole" in physical else ""
    env = check_env_files(files, {
        "bucket": bucket, "prefix": "lake", "database": database, "workgroup": created["workgroup"]["Name"],
        "output": output, "region": REGION, "strategy": strategy, "crawler": f"{stack}-lake",
        "crawler_role": crawler_role, "brokers": parameters["KafkaBootstrapServers"],
    })
    check_iam(documents, {
        "bucket": bucket, "prefix": "lake", "database": database, "workgroup": created["workgroup"]["Name"],
        "log_group": f"/stockstream/{stack}", "secret": parameters["KafkaScramSecretArn"],
        "release": parameters["ReleaseUrl"][len("s3://"):], "crawler": f"{stack}-lake" if strategy == "crawler" else None,
        "region": REGION, "account": ACCOUNT,
    })
    check_probe_filters(created["filters"], pathlib.Path(template_path).resolve().parent.parent / "deploy/stockstream-probe")
    root, bootstrap_log = None, ""
    if strategy == "partitions":
        # The bootstrap is the same for every strategy (only the env files differ): run once.
        root, bootstrap_log = run_bootstrap(endpoint, files, scratch)
        check_signer(root / "usr/local/sbin/stockstream-bootstrap")

    print(json.dumps({
        "stack": stack, "bucket": bucket, "prefix": "lake", "database": database,
        "workgroup": created["workgroup"]["Name"], "output_location": output,
        "crawler": created.get("crawler", {}).get("Name"), "crawler_role": crawler_role,
        "skipped": sorted(template["Resources"][name]["Type"] for name in skipped),
        "outputs": outputs, "host_root": str(root) if root else None, "env": env,
        "user_data_bytes": len(user_data.encode()), "bootstrap": bootstrap_log.strip().splitlines(),
    }))


if __name__ == "__main__":
    main()
