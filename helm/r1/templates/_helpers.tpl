# Shared helpers of the r1 chart: names, labels, config file, probes, containers, volumes.
{{- /*
Shared pieces of the r1 chart. Per-service helpers take a dict: (dict "root" $ "name" "<service>").
*/}}

{{- define "r1.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "r1.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- /* "<fullname>-<service>": the name of a service's objects. */}}
{{- define "r1.component" -}}
{{- printf "%s-%s" (include "r1.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "r1.selectorLabels" -}}
app.kubernetes.io/name: {{ include "r1.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "r1.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "r1.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: r1-stack
{{- end }}

{{- /* Labels of objects that belong to no single service (dashboard, rules). */}}
{{- define "r1.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "r1.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: r1-stack
{{- end }}

{{- define "r1.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "r1.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "r1.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- /*
The service's config file: the server section the chart owns, the service's implied settings
("r1.<service>.config", defined in its template), then <service>.config merged over both.
*/}}
{{- define "r1.configFile" -}}
{{- $v := index .root.Values .name }}
{{- $server := dict "port" $v.ports.grpc "metrics_port" $v.ports.metrics "grace_seconds" .root.Values.graceSeconds }}
{{- if .root.Values.auth.existingSecret }}
{{- $_ := set $server "auth_token_file" (printf "/var/run/secrets/r1/auth/%s" .root.Values.auth.key) }}
{{- end }}
{{- if .root.Values.tls.existingSecret }}
{{- $tls := dict "cert_file" "/var/run/secrets/r1/tls/tls.crt" "key_file" "/var/run/secrets/r1/tls/tls.key" }}
{{- if .root.Values.tls.mutual }}
{{- $_ := set $tls "client_ca_file" "/var/run/secrets/r1/tls/ca.crt" }}
{{- end }}
{{- $_ := set $server "tls" $tls }}
{{- end }}
{{- $implied := fromYaml (include (printf "r1.%s.config" .name) .root) }}
{{- $config := mustMergeOverwrite (dict "server" $server) $implied (deepCopy $v.config) }}
{{- toYaml $config }}
{{- end }}

{{- /* Pod annotations: global, the service's, a config checksum, and scrape annotations when no ServiceMonitor. */}}
{{- define "r1.podAnnotations" -}}
{{- $v := index .root.Values .name }}
{{- $a := mustMergeOverwrite (dict) (deepCopy .root.Values.podAnnotations) (deepCopy $v.podAnnotations) }}
{{- $_ := set $a "checksum/config" (include "r1.configFile" . | sha256sum) }}
{{- if and .root.Values.metrics.scrapeAnnotations (not .root.Values.metrics.serviceMonitor.enabled) }}
{{- $_ := set $a "prometheus.io/scrape" "true" }}
{{- $_ := set $a "prometheus.io/port" (toString $v.ports.metrics) }}
{{- $_ := set $a "prometheus.io/path" .root.Values.metrics.path }}
{{- end }}
{{- toYaml $a }}
{{- end }}

{{- /* One probe: native grpc, or (TLS on: kubelet probes speak no TLS) a Python health check over TLS. */}}
{{- define "r1.probe" -}}
{{- $v := index .root.Values .name }}
{{- if .root.Values.tls.existingSecret }}
{{- $serverName := default (include "r1.component" .) .root.Values.tls.serverName }}
{{- $mutual := ternary "True" "False" .root.Values.tls.mutual }}
exec:
  command:
    - python
    - -c
    - >-
      import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g;
      r = lambda n: open("/var/run/secrets/r1/tls/" + n, "rb").read(); m = {{ $mutual }};
      c = grpc.ssl_channel_credentials(r("ca.crt"), r("tls.key") if m else None, r("tls.crt") if m else None);
      ch = grpc.secure_channel("127.0.0.1:{{ $v.ports.grpc }}", c,
      options=[("grpc.ssl_target_name_override", "{{ $serverName }}")]);
      sys.exit(0 if g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=4).status == 1 else 1)
{{- else }}
grpc:
  port: {{ $v.ports.grpc }}
{{- end }}
periodSeconds: {{ .probe.periodSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
{{- end }}

{{- /*
Our service container. Extra keys: "resources" (a dict), "mounts" (YAML list of extra volumeMounts),
"env" (YAML list of extra env), "securityContext" (a dict; default .Values.securityContext).
*/}}
{{- define "r1.container" -}}
{{- $v := index .root.Values .name }}
{{- $p := .root.Values.probes }}
- name: {{ .name }}
  image: {{ include "r1.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args: ["serve", "{{ .name }}", "--config", "/etc/r1/config.yaml"]
  ports:
    - name: grpc
      containerPort: {{ $v.ports.grpc }}
      protocol: TCP
    - name: metrics
      containerPort: {{ $v.ports.metrics }}
      protocol: TCP
  env:
    - name: HOME
      value: /tmp
    - name: HF_HOME
      value: /tmp/huggingface
    {{- with .env }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $v.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    {{- include "r1.probe" (dict "root" .root "name" .name "probe" $p.startup) | trim | nindent 4 }}
  livenessProbe:
    {{- include "r1.probe" (dict "root" .root "name" .name "probe" $p.liveness) | trim | nindent 4 }}
  readinessProbe:
    {{- include "r1.probe" (dict "root" .root "name" .name "probe" $p.readiness) | trim | nindent 4 }}
  resources:
    {{- toYaml (default $v.resources .resources) | nindent 4 }}
  securityContext:
    {{- toYaml (default .root.Values.securityContext .securityContext) | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/r1
      readOnly: true
    - name: tmp
      mountPath: /tmp
    {{- if .root.Values.auth.existingSecret }}
    - name: auth
      mountPath: /var/run/secrets/r1/auth
      readOnly: true
    {{- end }}
    {{- if .root.Values.tls.existingSecret }}
    - name: tls
      mountPath: /var/run/secrets/r1/tls
      readOnly: true
    {{- end }}
    {{- with .mounts }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}

{{- /* The volumes every pod of ours has: config, /tmp, and the auth / TLS secrets when set. */}}
{{- define "r1.volumes" -}}
- name: config
  configMap:
    name: {{ include "r1.component" . }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if .root.Values.auth.existingSecret }}
- name: auth
  secret:
    secretName: {{ .root.Values.auth.existingSecret }}
{{- end }}
{{- if .root.Values.tls.existingSecret }}
- name: tls
  secret:
    secretName: {{ .root.Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{- /* Pod-level settings shared by every pod of ours (the "spec:" body before containers). */}}
{{- define "r1.podCommon" -}}
{{- $v := index .root.Values .name }}
serviceAccountName: {{ include "r1.serviceAccountName" .root }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountToken }}
terminationGracePeriodSeconds: {{ add .root.Values.graceSeconds 10 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- /* resources with nvidia.com/gpu: N added to requests and limits (N > 0). */}}
{{- define "r1.withGpus" -}}
{{- $r := deepCopy (default (dict) .resources) }}
{{- if gt (int .gpus) 0 }}
{{- $req := default (dict) $r.requests }}
{{- $lim := default (dict) $r.limits }}
{{- $_ := set $req "nvidia.com/gpu" (int .gpus) }}
{{- $_ := set $lim "nvidia.com/gpu" (int .gpus) }}
{{- $_ := set $r "requests" $req }}
{{- $_ := set $r "limits" $lim }}
{{- end }}
{{- toYaml $r }}
{{- end }}

{{- /* The Service of one component: gRPC + metrics ports. Extra key "selector" (YAML) adds selector labels. */}}
{{- define "r1.service" -}}
{{- $v := index .root.Values .name }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "r1.component" . }}
  labels:
    {{- include "r1.labels" . | trim | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "r1.selectorLabels" . | trim | nindent 4 }}
    {{- with .selector }}
    {{- . | nindent 4 }}
    {{- end }}
  ports:
    - name: grpc
      port: {{ $v.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ $v.ports.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
{{- end }}

{{- /* The ConfigMap holding one service's config file. */}}
{{- define "r1.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "r1.component" . }}
  labels:
    {{- include "r1.labels" . | trim | nindent 4 }}
data:
  config.yaml: |
    {{- include "r1.configFile" . | trim | nindent 4 }}
{{- end }}
