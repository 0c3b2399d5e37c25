{{/*
Names and labels of the keras-serving components, for every chart of the umbrella. Each helper
takes a dict, so the umbrella can name a subchart's objects from that subchart's values, exactly
as the subchart names them:
  component  the component's default name ("gateway", "model-server")
  values     that component's values (nameOverride, fullnameOverride)
  context    the calling chart's root context ($): release name, namespace, chart metadata
Names are cut to 63 characters: Kubernetes names and label values allow no more.
*/}}

{{/* The component names, written once for all charts. */}}
{{- define "common.component.gateway" -}}gateway{{- end }}
{{- define "common.component.modelServer" -}}model-server{{- end }}

{{- define "common.name" -}}
{{- default .component .values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<name>, with no "release contains name" shortcut, so that every chart computes
     the same name for a component. */}}
{{- define "common.fullname" -}}
{{- if .values.fullnameOverride }}
{{- .values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .context.Release.Name (include "common.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The headless Service beside a component's ClusterIP Service (one DNS record per ready pod). */}}
{{- define "common.headlessName" -}}
{{- printf "%s-headless" (include "common.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* Selector labels hold only name + instance: a Deployment's selector is immutable. */}}
{{- define "common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "common.name" . }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end }}

{{- define "common.chartLabel" -}}
{{- printf "%s-%s" .name .version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of a component's objects. */}}
{{- define "common.labels" -}}
helm.sh/chart: {{ include "common.chartLabel" (dict "name" .component "version" .context.Chart.Version) }}
{{ include "common.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: keras-serving
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
{{- end }}

{{/* Labels of release-wide objects (Ingress, NetworkPolicies, the test pod): (dict "context" $). */}}
{{- define "common.releaseLabels" -}}
helm.sh/chart: {{ include "common.chartLabel" (dict "name" .context.Chart.Name "version" .context.Chart.Version) }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keras-serving
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
{{- end }}

{{/* A Service's in-cluster DNS name: (dict "name" <Service name> "context" $). The cluster
     domain is global.clusterDomain (clusters renamed from cluster.local exist). */}}
{{- define "common.serviceHost" -}}
{{- printf "%s.%s.svc.%s" .name .context.Release.Namespace (.context.Values.global.clusterDomain | default "cluster.local") }}
{{- end }}

{{/* The ConfigMap of the gateway's settings that come from the rest of the release: where the
     model server is (TF_SERVING_HOST) and the Ingress path it answers under (URL_PREFIX). The
     umbrella chart renders it from the model server's and the Ingress's values; the gateway chart
     installed on its own, from gateway.config.modelServerTarget. Takes the gateway's dict. */}}
{{- define "common.gatewayWiringConfigMap" -}}
{{- printf "%s-wiring" (include "common.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}
