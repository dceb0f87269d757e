#!/bin/sh
# Prepares an EC2 host for stockstream's AWS mode; the stack's bootstrap runs it after install.sh.
# Logs: journald -> rsyslog (one file per unit) -> CloudWatch agent -> the stack's log group, where
# metric filters turn the probe's lines into the alarms' metrics. Access: the SSM agent, so that
# Session Manager replaces SSH.
#
#   setup-host.sh --region REGION --log-group NAME [--root DIR] [--no-agents]
#
# --root writes the configuration below DIR; --no-agents (tests) installs no agent and restarts
# nothing.
set -eu

usage() {
  echo "usage: setup-host.sh --region REGION --log-group NAME [--root DIR] [--no-agents]" >&2
  exit 2
}

region=""
log_group=""
root=/
agents=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --region) [ $# -ge 2 ] || usage; region=$2; shift 2 ;;
    --log-group) [ $# -ge 2 ] || usage; log_group=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
    --no-agents) agents=no; shift ;;
    *) echo "setup-host: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$region" in
  [a-z][a-z]-*-[0-9] | [a-z][a-z]-gov-*-[0-9]) ;;
  *) echo "setup-host: --region '$region' is not an AWS region" >&2; exit 2 ;;
esac
# CloudWatch log group names: letters, digits and . - _ / #
if [ -z "$log_group" ] || [ -n "$(printf '%s' "$log_group" | tr -d 'A-Za-z0-9._/#-')" ]; then
  echo "setup-host: --log-group '$log_group' is not a log group name" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=${root%/}
install -D -m 0644 "$here/rsyslog-stockstream.conf" "$root/etc/rsyslog.d/30-stockstream.conf"
install -D -m 0644 "$here/logrotate-stockstream" "$root/etc/logrotate.d/stockstream"
install -d -m 0750 "$root/var/log/stockstream"
install -d -m 0755 "$root/etc/stockstream"
sed "s|@LOG_GROUP@|$log_group|" "$here/cloudwatch-agent.json" >"$root/etc/stockstream/cloudwatch-agent.json"
echo "setup-host: log forwarding to $log_group configured below ${root:-/}"
[ "$agents" = yes ] || exit 0

systemctl restart rsyslog
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
for package in \
  "https://amazoncloudwatch-agent-$region.s3.$region.amazonaws.com/debian/amd64/latest/amazon-cloudwatch-agent.deb" \
  "https://s3.$region.amazonaws.com/amazon-ssm-$region/latest/debian_amd64/amazon-ssm-agent.deb"; do
  curl -fsS --retry 5 --retry-all-errors -o "$download/agent.deb" "$package"
  dpkg -i "$download/agent.deb"
done
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 \
  -c file:/etc/stockstream/cloudwatch-agent.json -s
systemctl enable --now amazon-ssm-agent
echo "setup-host: CloudWatch agent and SSM agent running"
