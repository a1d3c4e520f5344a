{{/*
Expand the name of the chart.
*/}}
{{- define "ocimirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A default fully qualified app name, truncated at 63 chars (some Kubernetes name fields are limited
to this). If the release name contains the chart name it is used as the full name.
*/}}
{{- define "ocimirror.fullname" -}}
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

{{- define "ocimirror.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ocimirror.labels" -}}
helm.sh/chart: {{ include "ocimirror.chart" . }}
{{ include "ocimirror.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ocimirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocimirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ocimirror.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ocimirror.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* No public image is published: the operator builds and pushes it (chart README, "The image"). */}}
{{- define "ocimirror.image" -}}
{{- $repository := required "image.repository is empty: no public ocimirror image is published. Build it (docker build -f deploy/Dockerfile -t ocimirror:<tag> .), push it to a registry your nodes pull from (e.g. the lab/ namespace of a running ocimirror) and set image.repository; see the chart README, \"The image\"" .Values.image.repository }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Fixed inside the pod: the image's user owns this path, and the Service targets this port. */}}
{{- define "ocimirror.dataDir" -}}/var/lib/ocimirror{{- end }}
{{- define "ocimirror.containerPort" -}}5000{{- end }}
{{/* The HTTPS listener of DNS-spoof mode: above 1024, as the non-root user without capabilities can bind it. */}}
{{- define "ocimirror.tlsContainerPort" -}}5443{{- end }}
{{- define "ocimirror.tlsDir" -}}/etc/ocimirror-tls{{- end }}

{{/*
The environment variable that carries one upstream's secret: (list "docker.io" "PASSWORD") gives
UPSTREAM_DOCKER_IO_PASSWORD.
*/}}
{{- define "ocimirror.credentialEnv" -}}
{{- $name := index . 0 -}}
{{- $kind := index . 1 -}}
{{- printf "UPSTREAM_%s_%s" (regexReplaceAll "[^A-Za-z0-9]+" $name "_" | upper) $kind -}}
{{- end }}

{{/* "true" when the mirror uses Redis (bundled or external), else empty. */}}
{{- define "ocimirror.redis.enabled" -}}
{{- if or .Values.redis.bundled.enabled .Values.redis.external.url .Values.redis.external.existingSecret -}}true{{- end -}}
{{- end }}

{{/* "true" when the bucket's keys come from a Secret (the chart's or s3.existingSecret), else empty. */}}
{{- define "ocimirror.s3.keys" -}}
{{- if and .Values.s3.enabled (or .Values.s3.accessKeyId .Values.s3.existingSecret) -}}true{{- end -}}
{{- end }}

{{- define "ocimirror.redis.fullname" -}}
{{- printf "%s-redis" (include "ocimirror.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The config file. It starts from .Values.config, attaches credentials as passwordEnv/tokenEnv
references (never the secrets themselves), pins listen and dataDir, and adds the Redis key prefix;
the Redis URL comes from the OCIMIRROR_REDIS_URL environment variable.
*/}}
{{- define "ocimirror.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $upstreams := list -}}
{{- range $upstream := .Values.config.upstreams -}}
{{- $upstream = deepCopy $upstream -}}
{{- $credentials := get $.Values.credentials $upstream.name -}}
{{- if $credentials -}}
{{- if $credentials.username -}}
{{- $_ := set $upstream "credentials" (dict "username" $credentials.username "passwordEnv" (include "ocimirror.credentialEnv" (list $upstream.name "PASSWORD"))) -}}
{{- else -}}
{{- $_ := set $upstream "credentials" (dict "tokenEnv" (include "ocimirror.credentialEnv" (list $upstream.name "TOKEN"))) -}}
{{- end -}}
{{- end -}}
{{- $upstreams = append $upstreams $upstream -}}
{{- end -}}
{{- if $upstreams -}}
{{- $_ := set $config "upstreams" $upstreams -}}
{{- else -}}
{{- $_ := unset $config "upstreams" -}}
{{- end -}}
{{- if not $config.cache.maxSize -}}
{{- $_ := unset $config.cache "maxSize" -}}
{{- end -}}
{{- $_ := set $config "listen" (printf "0.0.0.0:%s" (include "ocimirror.containerPort" .)) -}}
{{- $_ := set $config "dataDir" (include "ocimirror.dataDir" .) -}}
{{- if .Values.tls.enabled -}}
{{- $_ := set $config "tls" (dict "listen" (printf "0.0.0.0:%s" (include "ocimirror.tlsContainerPort" .)) "certFile" (printf "%s/tls.crt" (include "ocimirror.tlsDir" .)) "keyFile" (printf "%s/tls.key" (include "ocimirror.tlsDir" .))) -}}
{{- end -}}
{{- if include "ocimirror.redis.enabled" . -}}
{{- $_ := set $config "redis" (dict "keyPrefix" .Values.redis.keyPrefix) -}}
{{- end -}}
{{- if .Values.s3.enabled -}}
{{- $s3 := dict "bucket" (required "s3.enabled needs s3.bucket: the bucket (it must exist) that holds the blobs" .Values.s3.bucket) "region" .Values.s3.region "redirect" .Values.s3.redirect "redirectTtl" .Values.s3.redirectTtl -}}
{{- if .Values.s3.endpoint -}}
{{- $_ := set $s3 "endpoint" .Values.s3.endpoint -}}
{{- end -}}
{{- if .Values.s3.prefix -}}
{{- $_ := set $s3 "prefix" .Values.s3.prefix -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.s3.forcePathStyle) -}}
{{- $_ := set $s3 "forcePathStyle" .Values.s3.forcePathStyle -}}
{{- end -}}
{{- if include "ocimirror.s3.keys" . -}}
{{- $_ := set $s3 "accessKeyIdEnv" "S3_ACCESS_KEY_ID" -}}
{{- $_ := set $s3 "secretAccessKeyEnv" "S3_SECRET_ACCESS_KEY" -}}
{{- end -}}
{{- $_ := set $config "storage" (dict "s3" $s3) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $config (deepCopy .Values.extraConfig)) -}}
{{- end }}

{{/* Secret values this chart stores (env name -> value); empty when everything is external. */}}
{{- define "ocimirror.secretData" -}}
{{- $data := dict -}}
{{- range $name, $credentials := .Values.credentials -}}
{{- if not $credentials.existingSecret -}}
{{- if $credentials.username -}}
{{- $_ := set $data (include "ocimirror.credentialEnv" (list $name "PASSWORD")) (required (printf "credentials.%s: a username needs a password or an existingSecret" $name) $credentials.password) -}}
{{- else -}}
{{- $_ := set $data (include "ocimirror.credentialEnv" (list $name "TOKEN")) (required (printf "credentials.%s: give a token, a username and password, or an existingSecret" $name) $credentials.token) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.redis.external.url (not .Values.redis.external.existingSecret) -}}
{{- $_ := set $data "REDIS_URL" .Values.redis.external.url -}}
{{- end -}}
{{- if and (include "ocimirror.s3.keys" .) (not .Values.s3.existingSecret) -}}
{{- $_ := set $data "S3_ACCESS_KEY_ID" .Values.s3.accessKeyId -}}
{{- $_ := set $data "S3_SECRET_ACCESS_KEY" (required "s3.accessKeyId needs s3.secretAccessKey (or use s3.existingSecret)" .Values.s3.secretAccessKey) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end }}

{{/* Combinations the schema cannot express; included by the Deployment so they fail at render. */}}
{{- define "ocimirror.validate" -}}
{{- $names := list -}}
{{- range $upstream := .Values.config.upstreams -}}
{{- $names = append $names $upstream.name -}}
{{- end -}}
{{- range $name, $_ := .Values.credentials -}}
{{- if not (has $name $names) -}}
{{- fail (printf "credentials.%s: no upstream named %q in config.upstreams (credentials need the upstreams listed explicitly)" $name $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.enabled (hasKey .Values.config "tls") -}}
{{- fail "tls: set either the top-level tls section (it writes config.tls and adds the ports) or config.tls, not both" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.enabled needs tls.secretName: a kubernetes.io/tls Secret with the server certificate from `ocimirror tls init` (chart README, \"DNS-spoof mode\")" -}}
{{- end -}}
{{- if and .Values.s3.enabled .Values.s3.secretAccessKey .Values.s3.existingSecret -}}
{{- fail "s3: give the keys either as accessKeyId/secretAccessKey or as existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.redis.bundled.enabled (or .Values.redis.external.url .Values.redis.external.existingSecret) -}}
{{- fail "redis: enable either redis.bundled or redis.external, not both" -}}
{{- end -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- if not (include "ocimirror.redis.enabled" .) -}}
{{- fail "replicaCount > 1 needs Redis (redis.bundled.enabled or redis.external.url): without it the data directory's metadata belongs to one process" -}}
{{- end -}}
{{- if .Values.s3.enabled -}}
{{- if .Values.persistence.enabled -}}
{{- fail "replicaCount > 1 with s3.enabled needs persistence.enabled=false: the bytes are in the bucket and each pod keeps its own scratch space in an emptyDir (a shared volume would mix the replicas' scratch files)" -}}
{{- end -}}
{{- else if and .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "replicaCount > 1 needs persistence.accessModes to include ReadWriteMany (replicas share one cache volume), or s3.enabled (blobs in a bucket, no shared volume)" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* The bundled Redis has its own selector labels so the mirror's Service never selects it. */}}
{{- define "ocimirror.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocimirror.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ocimirror.redis.labels" -}}
helm.sh/chart: {{ include "ocimirror.chart" . }}
{{ include "ocimirror.redis.selectorLabels" . }}
app.kubernetes.io/component: metadata-store
app.kubernetes.io/part-of: {{ include "ocimirror.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
