{{/*
Naming, labels and the two teraslice.yaml documents. Every user string reaches the manifests
through toYaml/quote/toJson, never raw, so quotes and newlines cannot break the YAML.
*/}}

{{- define "teraslice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "teraslice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 38 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 38 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 38 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "teraslice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Teraslice cluster name (teraslice.name): clusterName, else teraslice.name, else the release. */}}
{{- define "teraslice.clusterName" -}}
{{- .Values.clusterName | default .Values.teraslice.name | default .Release.Name -}}
{{- end -}}

{{/*
The instance label, exactly teraslice_k8s.kubernetes.names.cluster_name_label: the seed's rule
clusterName.replace(/[^a-zA-Z0-9_\-.]/g, '_').substring(0, 63) (JavaScript counts a character
outside the BMP as two), kept when it is a valid label value; otherwise the first 52 characters
trimmed to alphanumeric ends, "-", and the first 10 hex digits of sha256(clusterName).
*/}}
{{- define "teraslice.instanceLabel" -}}
{{- $name := include "teraslice.clusterName" . -}}
{{- $label := regexReplaceAll "[\\x{10000}-\\x{10FFFF}]" $name "__" -}}
{{- $label = regexReplaceAll "[^a-zA-Z0-9_.-]" $label "_" | trunc 63 -}}
{{- if regexMatch "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$" $label -}}
{{- $label -}}
{{- else -}}
{{- $slug := regexReplaceAll "^[^A-Za-z0-9]+|[^A-Za-z0-9]+$" ($label | trunc 52) "" -}}
{{- $digest := sha256sum $name | trunc 10 -}}
{{- if $slug }}{{ printf "%s-%s" $slug $digest }}{{ else }}{{ $digest }}{{ end -}}
{{- end -}}
{{- end -}}

{{- define "teraslice.selectorLabels" -}}
app.kubernetes.io/name: teraslice
app.kubernetes.io/instance: {{ include "teraslice.instanceLabel" . | quote }}
{{- end -}}

{{/* Labels of every chart object; component is passed as .component. commonLabels never replace these. */}}
{{- define "teraslice.labels" -}}
{{- $ctx := .ctx -}}
{{- $labels := dict
      "helm.sh/chart" (include "teraslice.chart" $ctx)
      "app.kubernetes.io/managed-by" $ctx.Release.Service
      "app.kubernetes.io/version" $ctx.Chart.AppVersion
      "app.kubernetes.io/part-of" "teraslice"
      "app.kubernetes.io/component" .component -}}
{{- $labels = mustMergeOverwrite (deepCopy $ctx.Values.commonLabels) $labels (include "teraslice.selectorLabels" $ctx | fromYaml) -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* Pod template labels: podLabels, then the fixed selector labels (which always win). */}}
{{- define "teraslice.podLabels" -}}
{{- $labels := mustMergeOverwrite (deepCopy .labels) (include "teraslice.selectorLabels" .ctx | fromYaml) (dict "app.kubernetes.io/component" .component) -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* Elasticsearch objects: their own name label, so the master never counts them as Teraslice pods. */}}
{{- define "teraslice.elasticsearch.selectorLabels" -}}
app.kubernetes.io/name: elasticsearch
app.kubernetes.io/instance: {{ include "teraslice.instanceLabel" . | quote }}
app.kubernetes.io/component: state-store
{{- end -}}

{{- define "teraslice.elasticsearch.labels" -}}
{{- $labels := dict
      "helm.sh/chart" (include "teraslice.chart" .)
      "app.kubernetes.io/managed-by" .Release.Service
      "app.kubernetes.io/version" .Values.elasticsearch.image.tag
      "app.kubernetes.io/part-of" "teraslice" -}}
{{- $labels = mustMergeOverwrite (deepCopy .Values.commonLabels) $labels (include "teraslice.elasticsearch.selectorLabels" . | fromYaml) -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "teraslice.masterName" -}}
{{- printf "%s-master" (include "teraslice.fullname" .) -}}
{{- end -}}

{{- define "teraslice.workerConfigMapName" -}}
{{- printf "%s-worker" (include "teraslice.fullname" .) -}}
{{- end -}}

{{- define "teraslice.elasticsearch.name" -}}
{{- printf "%s-elasticsearch" (include "teraslice.fullname" .) -}}
{{- end -}}

{{- define "teraslice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (printf "%s-master-service-account" (include "teraslice.fullname" .)) -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false (the master needs a ServiceAccount bound to its Role)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "teraslice.roleName" -}}
{{- .Values.rbac.roleName | default (printf "%s-master-role-%s" (include "teraslice.fullname" .) .Release.Namespace) | trunc 253 -}}
{{- end -}}

{{- define "teraslice.roleBindingName" -}}
{{- .Values.rbac.roleBindingName | default (printf "%s-master-%s" (include "teraslice.fullname" .) .Release.Namespace) | trunc 253 -}}
{{- end -}}

{{- define "teraslice.priorityClassName" -}}
{{- if .Values.priorityClass.create -}}
{{- .Values.priorityClass.name | default (printf "%s-%s" (include "teraslice.fullname" .) .Release.Namespace) | trunc 253 -}}
{{- end -}}
{{- end -}}

{{/*
Priority class of job pods (`kubernetes_priority_class_name` in the config): the free-form
`teraslice.kubernetes_priority_class_name`, else `jobPods.priorityClassName`, else the created
PriorityClass, else none. The master pod runs with it too unless `master.priorityClassName` is set.
*/}}
{{- define "teraslice.jobPodsPriorityClassName" -}}
{{- get .Values.teraslice "kubernetes_priority_class_name" | default .Values.jobPods.priorityClassName | default (include "teraslice.priorityClassName" .) -}}
{{- end -}}

{{- define "teraslice.assetsClaimName" -}}
{{- if .Values.assets.persistence.enabled -}}
{{- .Values.assets.persistence.existingClaim | default (printf "%s-assets" (include "teraslice.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{- define "teraslice.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "teraslice.port" -}}
{{- .Values.teraslice.port | default 5678 | int -}}
{{- end -}}

{{- define "teraslice.masterHostname" -}}
{{- printf "%s.%s.svc.%s" (include "teraslice.masterName" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* Secret holding the Elasticsearch credentials, or "" when none are used. */}}
{{- define "teraslice.elasticsearch.authSecret" -}}
{{- if .Values.elasticsearch.enabled -}}
{{- if .Values.elasticsearch.security.enabled -}}
{{- .Values.elasticsearch.auth.existingSecret | default (include "teraslice.elasticsearch.name" .) -}}
{{- end -}}
{{- else -}}
{{- .Values.elasticsearch.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* secretEnv plus the Elasticsearch credentials, as a YAML list of {name, secretName, key}. */}}
{{- define "teraslice.secretEnv" -}}
{{- $entries := list -}}
{{- $secret := include "teraslice.elasticsearch.authSecret" . -}}
{{- if $secret -}}
{{- $entries = append $entries (dict "name" "TERASLICE_ES_USERNAME" "secretName" $secret "key" .Values.elasticsearch.auth.usernameKey) -}}
{{- $entries = append $entries (dict "name" "TERASLICE_ES_PASSWORD" "secretName" $secret "key" .Values.elasticsearch.auth.passwordKey) -}}
{{- end -}}
{{- $entries = concat $entries .Values.secretEnv -}}
{{- toYaml (dict "entries" $entries) -}}
{{- end -}}

{{- define "teraslice.elasticsearch.nodes" -}}
{{- if .Values.elasticsearch.enabled -}}
{{- toYaml (list (printf "http://%s.%s.svc.%s:9200" (include "teraslice.elasticsearch.name" .) .Release.Namespace .Values.clusterDomain)) -}}
{{- else -}}
{{- toYaml .Values.elasticsearch.external.nodes -}}
{{- end -}}
{{- end -}}

{{/*
The teraslice.yaml both ConfigMaps hold, as a dict: the chart's computed settings with the
free-form teraslice/terafoundation values deep-merged over them. Pass (dict "ctx" $ "master" bool).
*/}}
{{- define "teraslice.config" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $connection := dict "node" (include "teraslice.elasticsearch.nodes" $ctx | fromYamlArray) -}}
{{- if include "teraslice.elasticsearch.authSecret" $ctx -}}
{{- $_ := set $connection "username" "${TERASLICE_ES_USERNAME}" -}}
{{- $_ := set $connection "password" "${TERASLICE_ES_PASSWORD}" -}}
{{- end -}}
{{- $terafoundation := dict
      "log_level" $v.logLevel
      "prom_metrics_enabled" $v.metrics.enabled
      "prom_metrics_port" ($v.metrics.port | int)
      "prom_metrics_add_default" $v.metrics.addDefault
      "connectors" (dict "elasticsearch-next" (dict "default" $connection)) -}}
{{- with $v.metrics.displayUrl -}}
{{- $_ := set $terafoundation "prom_metrics_display_url" . -}}
{{- end -}}
{{- $teraslice := dict
      "name" (include "teraslice.clusterName" $ctx)
      "master" .master
      "master_hostname" (include "teraslice.masterHostname" $ctx)
      "port" (include "teraslice.port" $ctx | int)
      "cluster_manager_type" "kubernetesV2"
      "kubernetes_namespace" $ctx.Release.Namespace
      "kubernetes_config_map_name" (include "teraslice.workerConfigMapName" $ctx)
      "kubernetes_image" ($v.jobPods.image | default (include "teraslice.image" $ctx))
      "kubernetes_worker_antiaffinity" $v.jobPods.workerAntiAffinity
      "kubernetes_overrides_enabled" $v.jobPods.overridesEnabled
      "kubernetes_api_poll_delay" ($v.jobPods.apiPollDelay | int)
      "cpu_execution_controller" $v.jobPods.executionController.cpu
      "memory_execution_controller" ($v.jobPods.executionController.memory | int64)
      "assets_directory" $v.assets.directory
      "storage" (dict "type" "elasticsearch" "connection" "default") -}}
{{- with $v.jobPods.imagePullSecret -}}
{{- $_ := set $teraslice "kubernetes_image_pull_secret" . -}}
{{- end -}}
{{- with ($v.jobPods.priorityClassName | default (include "teraslice.priorityClassName" $ctx)) -}}
{{- $_ := set $teraslice "kubernetes_priority_class_name" . -}}
{{- end -}}
{{- with $v.jobPods.executionController.targets -}}
{{- $_ := set $teraslice "execution_controller_targets" . -}}
{{- end -}}
{{- with include "teraslice.assetsClaimName" $ctx -}}
{{- $_ := set $teraslice "assets_volume" . -}}
{{- end -}}
{{- with $v.jobPods.envVars -}}
{{- $_ := set $teraslice "env_vars" . -}}
{{- end -}}
{{- $refs := dict -}}
{{- range (include "teraslice.secretEnv" $ctx | fromYaml).entries -}}
{{- $_ := set $refs .name (dict "name" .secretName "key" .key) -}}
{{- end -}}
{{- if $refs -}}
{{- $_ := set $teraslice "kubernetes_env_secret_refs" $refs -}}
{{- end -}}
{{- $base := dict "terafoundation" $terafoundation "teraslice" $teraslice -}}
{{- $user := dict "terafoundation" (deepCopy $v.terafoundation) "teraslice" (deepCopy $v.teraslice) -}}
{{- toYaml (mustMergeOverwrite (dict) $base $user) -}}
{{- end -}}

{{/* Fails the render on combinations the schema cannot express. */}}
{{- define "teraslice.validate" -}}
{{- range $key := list "kubernetes_namespace" "kubernetes_config_map_name" "master_hostname" "master" -}}
{{- if hasKey $.Values.teraslice $key -}}
{{- fail (printf "teraslice.%s is set by the chart (namespace, worker ConfigMap and master Service of this release); remove it from the teraslice values" $key) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := dict "assets_directory" "assets.directory" "assets_volume" "assets.persistence (enabled, existingClaim)" -}}
{{- if hasKey $.Values.teraslice $key -}}
{{- fail (printf "teraslice.%s is set by the chart from %s, which also mounts it into the master pod; set %s instead" $key $value $value) -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.elasticsearch.enabled) (empty .Values.elasticsearch.external.nodes) -}}
{{- fail "elasticsearch.external.nodes must list at least one URL when elasticsearch.enabled=false" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true (the master serves /metrics only then)" -}}
{{- end -}}
{{- end -}}
