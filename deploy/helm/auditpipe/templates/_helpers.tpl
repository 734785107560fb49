{{/*
Names and labels.
*/}}
{{- define "auditpipe.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: dict "root" $ "component" "poller". */}}
{{- define "auditpipe.name" -}}
{{- printf "%s-%s" (include "auditpipe.fullname" .root) .component -}}
{{- end -}}

{{- define "auditpipe.selectorLabels" -}}
app.kubernetes.io/name: auditpipe
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "auditpipe.labels" -}}
{{ include "auditpipe.selectorLabels" . }}
app.kubernetes.io/part-of: auditpipe
app.kubernetes.io/version: {{ include "auditpipe.tag" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "auditpipe.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/* The image of a service: dict "root" $ "component" "poller". */}}
{{- define "auditpipe.image" -}}
{{- $v := .root.Values.image -}}
{{- $repo := printf "%s/%s" $v.repository .component -}}
{{- if $v.registry -}}{{- $repo = printf "%s/%s" $v.registry $repo -}}{{- end -}}
{{- printf "%s:%s" $repo (include "auditpipe.tag" .root) -}}
{{- end -}}

{{/*
Secrets: existing Secrets are projected into one read-only volume at
/var/run/secrets/auditpipe and the services read them through *_file keys.
*/}}
{{- define "auditpipe.secretDir" -}}/var/run/secrets/auditpipe{{- end -}}

{{/* Projected sources for the secrets the components in .components use. */}}
{{- define "auditpipe.secretSources" -}}
{{- $v := .root.Values -}}
{{- $c := .components -}}
{{- with $v.kafkaSecrets.tls.name }}
- secret:
    name: {{ . }}
    items:
      - {key: ca.crt, path: kafka/ca.crt}
      {{- if $v.kafkaSecrets.tls.clientCertificate }}
      - {key: tls.crt, path: kafka/tls.crt}
      - {key: tls.key, path: kafka/tls.key}
      {{- end }}
{{- end }}
{{- with $v.kafkaSecrets.saslPassword.name }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $v.kafkaSecrets.saslPassword.key }}, path: kafka/sasl-password}
{{- end }}
{{- if or (has "enricher" $c) (has "loader" $c) }}
{{- with $v.registrySecrets.password.name }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $v.registrySecrets.password.key }}, path: registry/password}
{{- end }}
{{- end }}
{{- if has "loader" $c }}
{{- with $v.clickhouseSecrets.password.name }}
- secret:
    name: {{ . }}
    items:
      - {key: {{ $v.clickhouseSecrets.password.key }}, path: clickhouse/password}
{{- end }}
{{- with $v.clickhouseSecrets.tls.name }}
- secret:
    name: {{ . }}
    items:
      - {key: ca.crt, path: clickhouse/ca.crt}
{{- end }}
{{- end }}
{{- if has "poller" $c }}
{{- range $i, $s := $v.poller.sources }}
- secret:
    name: {{ $s.admin_key_secret.name }}
    items:
      - {key: {{ $s.admin_key_secret.key | default "admin-key" }}, path: {{ printf "sources/%d/admin-key" $i }}}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Service configuration: each service's own YAML, built from its `config` value
with the shared sections (kafka, registry, clickhouse, topics, log) and the
keys the chart owns (admin.addr, *_file, migrate, register) set over it.
*/}}

{{/* overlay sets every key of .src in a copy of .dst (one level). */}}
{{- define "auditpipe.overlay" -}}
{{- $out := deepCopy (.dst | default dict) -}}
{{- range $k, $val := .src }}{{ $_ := set $out $k $val }}{{ end -}}
{{- toYaml $out -}}
{{- end -}}

{{- define "auditpipe.kafkaConfig" -}}
{{- $v := .root.Values -}}
{{- $k := include "auditpipe.overlay" (dict "dst" (get .config "kafka") "src" (deepCopy $v.kafka)) | fromYaml -}}
{{- $_ := set $k "client_id" (printf "auditpipe-%s" .component) -}}
{{- $dir := include "auditpipe.secretDir" . -}}
{{- if $v.kafkaSecrets.tls.name -}}
{{- $tls := deepCopy ($k.tls | default dict) -}}
{{- $_ := set $tls "enabled" true -}}
{{- $_ := set $tls "ca_file" (printf "%s/kafka/ca.crt" $dir) -}}
{{- if $v.kafkaSecrets.tls.clientCertificate -}}
{{- $_ := set $tls "cert_file" (printf "%s/kafka/tls.crt" $dir) -}}
{{- $_ := set $tls "key_file" (printf "%s/kafka/tls.key" $dir) -}}
{{- end -}}
{{- $_ := set $k "tls" $tls -}}
{{- end -}}
{{- if $v.kafkaSecrets.saslPassword.name -}}
{{- $sasl := deepCopy ($k.sasl | default dict) -}}
{{- $_ := set $sasl "password_file" (printf "%s/kafka/sasl-password" $dir) -}}
{{- $_ := set $k "sasl" $sasl -}}
{{- end -}}
{{- toYaml $k -}}
{{- end -}}

{{- define "auditpipe.registryConfig" -}}
{{- $v := .root.Values -}}
{{- $r := include "auditpipe.overlay" (dict "dst" (get .config "registry") "src" (deepCopy $v.registry)) | fromYaml -}}
{{- if $v.registrySecrets.password.name -}}
{{- $_ := set $r "password_file" (printf "%s/registry/password" (include "auditpipe.secretDir" .)) -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{- define "auditpipe.runtimeConfig" -}}
{{- $cfg := deepCopy (.config | default dict) -}}
{{- $_ := set $cfg "log" (include "auditpipe.overlay" (dict "dst" (get $cfg "log") "src" .root.Values.log) | fromYaml) -}}
{{- $_ := set $cfg "admin" (include "auditpipe.overlay" (dict "dst" (get $cfg "admin") "src" (dict "addr" (printf ":%d" (int .port)))) | fromYaml) -}}
{{- $_ := set $cfg "kafka" (include "auditpipe.kafkaConfig" . | fromYaml) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "auditpipe.config.poller" -}}
{{- $v := .Values -}}
{{- $ctx := dict "root" . "component" "poller" "config" $v.poller.config "port" $v.poller.adminPort -}}
{{- $cfg := include "auditpipe.runtimeConfig" $ctx | fromYaml -}}
{{- $_ := set $cfg "topics" (dict "raw" $v.topics.raw "state" $v.topics.state) -}}
{{- $sources := list -}}
{{- range $i, $s := $v.poller.sources -}}
{{- $src := omit $s "admin_key_secret" -}}
{{- $_ := set $src "admin_key_file" (printf "%s/sources/%d/admin-key" (include "auditpipe.secretDir" $) $i) -}}
{{- $sources = append $sources $src -}}
{{- end -}}
{{- $_ := set $cfg "sources" $sources -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "auditpipe.config.enricher" -}}
{{- $v := .Values -}}
{{- $ctx := dict "root" . "component" "enricher" "config" $v.enricher.config "port" $v.enricher.adminPort -}}
{{- $cfg := include "auditpipe.runtimeConfig" $ctx | fromYaml -}}
{{- $_ := set $cfg "topics" (dict "raw" $v.topics.raw.name "enriched" $v.topics.enriched "dlq" $v.topics.dlq "create" $v.topics.create) -}}
{{- $reg := include "auditpipe.registryConfig" $ctx | fromYaml -}}
{{- $_ := set $reg "register" (not $v.migrations.enabled) -}}
{{- $_ := set $cfg "registry" $reg -}}
{{- $geo := deepCopy (get $cfg "geo" | default dict) -}}
{{- range $k, $file := $v.enricher.geoip.databases -}}
{{- if $file }}{{ $_ := set $geo $k (printf "/var/lib/auditpipe/geoip/%s" $file) }}{{ end -}}
{{- end -}}
{{- $_ := set $cfg "geo" $geo -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "auditpipe.config.loader" -}}
{{- $v := .Values -}}
{{- $ctx := dict "root" . "component" "loader" "config" $v.loader.config "port" $v.loader.adminPort -}}
{{- $cfg := include "auditpipe.runtimeConfig" $ctx | fromYaml -}}
{{- $_ := set $cfg "registry" (include "auditpipe.registryConfig" $ctx | fromYaml) -}}
{{- $consumer := deepCopy (get $cfg "consumer" | default dict) -}}
{{- $_ := set $consumer "topic" $v.topics.enriched.name -}}
{{- $_ := set $consumer "dlq_topic" $v.topics.dlq.name -}}
{{- $_ := set $cfg "consumer" $consumer -}}
{{- $ch := include "auditpipe.overlay" (dict "dst" (get $cfg "clickhouse") "src" (deepCopy $v.clickhouse)) | fromYaml -}}
{{- $dir := include "auditpipe.secretDir" . -}}
{{- if $v.clickhouseSecrets.password.name -}}
{{- $_ := set $ch "password_file" (printf "%s/clickhouse/password" $dir) -}}
{{- end -}}
{{- if $v.clickhouseSecrets.tls.name -}}
{{- $tls := deepCopy ($ch.tls | default dict) -}}
{{- $_ := set $tls "enabled" true -}}
{{- $_ := set $tls "ca_file" (printf "%s/clickhouse/ca.crt" $dir) -}}
{{- $_ := set $ch "tls" $tls -}}
{{- end -}}
{{- $_ := set $ch "migrate" (not $v.migrations.enabled) -}}
{{- $_ := set $cfg "clickhouse" $ch -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
Checks that JSON schema cannot express, with messages that say what to do.
*/}}
{{- define "auditpipe.validate" -}}
{{- $v := .Values -}}
{{- range $svc := list "poller" "enricher" "loader" -}}
{{- $cfg := (get $v $svc).config | default dict -}}
{{- range $key := list "kafka" "topics" "log" "sources" "migrate_only" "register_only" -}}
{{- if hasKey $cfg $key -}}
{{- if eq $key "kafka" -}}
{{- /* per-service kafka keys (linger, ...) are fine; shared ones come from .Values.kafka */ -}}
{{- range $k, $unused := $v.kafka }}{{ if hasKey (get $cfg "kafka") $k }}{{ fail (printf "%s.config.kafka.%s: set it in the shared `kafka` value, which every service gets" $svc $k) }}{{ end }}{{ end -}}
{{- else -}}
{{- fail (printf "%s.config.%s: the chart sets this key (use the shared `topics`/`log` values, poller.sources, or the migrations Job)" $svc $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.autoscaling.enabled -}}
{{- if gt (int $v.autoscaling.enricher.maxReplicas) (int $v.topics.raw.partitions) -}}
{{- fail (printf "autoscaling.enricher.maxReplicas (%d) is above topics.raw.partitions (%d): an enricher beyond the partition count of the topic it reads would idle" (int $v.autoscaling.enricher.maxReplicas) (int $v.topics.raw.partitions)) -}}
{{- end -}}
{{- if gt (int $v.autoscaling.loader.maxReplicas) (int $v.topics.enriched.partitions) -}}
{{- fail (printf "autoscaling.loader.maxReplicas (%d) is above topics.enriched.partitions (%d): a loader beyond the partition count of the topic it reads would idle" (int $v.autoscaling.loader.maxReplicas) (int $v.topics.enriched.partitions)) -}}
{{- end -}}
{{- range $svc := list "enricher" "loader" -}}
{{- $a := get $v.autoscaling $svc -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "autoscaling.%s.minReplicas (%d) is above its maxReplicas (%d)" $svc (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.kafka.sasl.mechanism (not $v.kafkaSecrets.saslPassword.name) -}}
{{- fail "kafka.sasl.mechanism is set but kafkaSecrets.saslPassword.name is empty: name the Secret holding the SASL password" -}}
{{- end -}}
{{- /* A poller without sources runs, ready, and collects nothing: refuse it. */ -}}
{{- if not $v.poller.sources -}}
{{- fail "poller.sources is empty: the pollers would run and collect nothing. Name at least one organization (source_id, workspace_id and admin_key_secret, see values.yaml)" -}}
{{- end -}}
{{- $ids := dict -}}
{{- range $i, $s := $v.poller.sources -}}
{{- if hasKey $ids $s.source_id -}}
{{- fail (printf "poller.sources[%d].source_id %q is also poller.sources[%d].source_id: source ids must be unique" $i $s.source_id (get $ids $s.source_id)) -}}
{{- end -}}
{{- $_ := set $ids $s.source_id $i -}}
{{- end -}}
{{- end -}}

{{/* Pod-level pieces shared by every workload. */}}
{{- define "auditpipe.podSpecCommon" -}}
{{- $v := .root.Values -}}
automountServiceAccountToken: false
{{- with $v.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A service container: dict "root" $ "component" "poller" "values" .Values.poller */}}
{{- define "auditpipe.container" -}}
- name: {{ .component }}
  image: {{ include "auditpipe.image" . }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args: ["--config", "/etc/auditpipe/config.yaml"]
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef: {fieldPath: metadata.name}
    {{- if dig "limits" "memory" "" (.values.resources | default dict) }}
    # The service sizes its buffers and Go's soft limit from the container's memory limit (bytes).
    - name: AUDITPIPE_{{ upper .component }}_MEMORY__LIMIT
      valueFrom:
        resourceFieldRef: {resource: limits.memory}
    {{- end }}
    {{- with .env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - {name: admin, containerPort: {{ .values.adminPort }}, protocol: TCP}
  livenessProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 6
  readinessProbe:
    httpGet: {path: /readyz, port: admin}
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - {name: config, mountPath: /etc/auditpipe, readOnly: true}
    - {name: tmp, mountPath: /tmp}
    {{- if include "auditpipe.secretSources" (dict "root" .root "components" (list .component)) }}
    - {name: secrets, mountPath: {{ include "auditpipe.secretDir" . }}, readOnly: true}
    {{- end }}
    {{- with .extraMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The volumes of a service pod. */}}
{{- define "auditpipe.volumes" -}}
- name: config
  configMap:
    name: {{ include "auditpipe.name" . }}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- with include "auditpipe.secretSources" (dict "root" .root "components" (list .component)) }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- . | trim | nindent 6 }}
{{- end }}
{{- end -}}
