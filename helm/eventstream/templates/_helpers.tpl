{{/* Names, labels and pieces every workload shares. */}}

{{- define "eventstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name; pool Deployments append -delivery-<pool>. */}}
{{- define "eventstream.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "eventstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels; call with (dict "root" $ "component" "ingest" "pool" "") */}}
{{- define "eventstream.labels" -}}
helm.sh/chart: {{ include "eventstream.chart" .root }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: eventstream
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "eventstream.selectorLabels" . }}
{{- end -}}

{{- define "eventstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventstream.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .pool }}
eventstream.io/pool: {{ .pool }}
{{- end }}
{{- end -}}

{{- define "eventstream.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .service (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{- define "eventstream.secretName" -}}
{{- default (printf "%s-secrets" (include "eventstream.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "eventstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eventstream.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Rolls pods when the generated Secret or the ConfigMap changes. */}}
{{- define "eventstream.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include "eventstream.secretData" . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Environment from the ConfigMap and the Secret. */}}
{{- define "eventstream.envFrom" -}}
- configMapRef:
    name: {{ include "eventstream.fullname" . }}-config
- secretRef:
    name: {{ include "eventstream.secretName" . }}
{{- end -}}

{{/*
PUBLIC_HOSTS: the deployment's own hosts, which no callback URL may point at
(services refuse them at registration and when delivering). The ingress hosts
(every port: TLS or not, the same API answers) plus config.publicHosts.
Wildcard ingress hosts name no single host and are left out; list the names
in config.publicHosts. Empty when there is neither.
*/}}
{{- define "eventstream.publicHosts" -}}
{{- $hosts := list -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts -}}
{{- if and .host (not (hasPrefix "*" .host)) -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range .Values.config.publicHosts -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- join "," ($hosts | uniq) -}}
{{- end -}}

{{/* Extra variables as a list of EnvVar; call with a map. */}}
{{- define "eventstream.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/*
Init container waiting until the catalog has every migration this release's
image embeds. It waits for the schema, never for the hook Job, so rollouts do
not depend on hook ordering (helm --wait, Argo CD, Flux).
*/}}
{{- define "eventstream.waitForSchema" -}}
{{- if and .Values.migrations.enabled .Values.migrations.waitForSchema }}
initContainers:
  - name: wait-for-schema
    image: {{ include "eventstream.image" (dict "root" . "service" "eventstream") }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: ["migrate", "--wait", "--timeout", {{ .Values.migrations.waitTimeout | quote }}]
    env:
      - name: DATABASE_URL
        valueFrom:
          secretKeyRef:
            name: {{ include "eventstream.secretName" . }}
            key: DATABASE_URL
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml .Values.migrations.resources | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Topology spread over zones and nodes for one selector. */}}
{{- define "eventstream.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "eventstream.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Pool Deployment name. */}}
{{- define "eventstream.poolName" -}}
{{- printf "%s-delivery-%s" (include "eventstream.fullname" .root) .pool.name -}}
{{- end -}}

{{/* The generated Secret's data (existing values are kept across upgrades). */}}
{{- define "eventstream.secretData" -}}
{{- $s := .Values.secrets -}}
{{- $name := printf "%s-secrets" (include "eventstream.fullname" .) -}}
{{- $old := (lookup "v1" "Secret" .Release.Namespace $name).data | default dict -}}
DATABASE_URL: {{ $s.databaseURL | b64enc | quote }}
KAFKA_BROKERS: {{ join "," $s.kafkaBrokers | b64enc | quote }}
{{- if $s.secretsKey }}
SECRETS_KEY: {{ $s.secretsKey | b64enc | quote }}
{{- else if $old.SECRETS_KEY }}
SECRETS_KEY: {{ $old.SECRETS_KEY | quote }}
{{- else }}
SECRETS_KEY: {{ randBytes 32 | b64enc | quote }}
{{- end }}
{{- if $s.auth.jwksURL }}
AUTH_JWKS_URL: {{ $s.auth.jwksURL | b64enc | quote }}
{{- else if $s.auth.hs256Secret }}
AUTH_HS256_SECRET: {{ $s.auth.hs256Secret | b64enc | quote }}
{{- else if $old.AUTH_HS256_SECRET }}
AUTH_HS256_SECRET: {{ $old.AUTH_HS256_SECRET | quote }}
{{- else }}
AUTH_HS256_SECRET: {{ randAlphaNum 48 | b64enc | quote }}
{{- end }}
{{- with $s.auth.issuer }}
AUTH_ISSUER: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.auth.audience }}
AUTH_AUDIENCE: {{ . | b64enc | quote }}
{{- end }}
{{- end -}}
