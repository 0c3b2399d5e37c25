{{/*
Umbrella-level helpers: the subcharts' objects are named by the same charts/common helpers the
subcharts use, from each subchart's values, so every name and address here is the one rendered.
*/}}
{{- define "keras-serving.labels" -}}
{{- include "common.releaseLabels" (dict "context" .) }}
{{- end }}

{{- define "keras-serving.gatewayFullname" -}}
{{- include "common.fullname" (dict "component" (include "common.component.gateway" .) "values" .Values.gateway "context" .) }}
{{- end }}

{{- define "keras-serving.gatewaySelectorLabels" -}}
{{- include "common.selectorLabels" (dict "component" (include "common.component.gateway" .) "values" .Values.gateway "context" .) }}
{{- end }}

{{- define "keras-serving.modelServerFullname" -}}
{{- include "common.fullname" (dict "component" (include "common.component.modelServer" .) "values" .Values.modelServer "context" .) }}
{{- end }}

{{- define "keras-serving.modelServerSelectorLabels" -}}
{{- include "common.selectorLabels" (dict "component" (include "common.component.modelServer" .) "values" .Values.modelServer "context" .) }}
{{- end }}

{{/* dns:/// makes the gateway's gRPC client resolve every model server pod behind the headless
     Service and balance with round_robin, instead of pinning one connection to one pod. */}}
{{- define "keras-serving.modelServerTarget" -}}
{{- if .Values.gateway.config.modelServerTarget }}
{{- .Values.gateway.config.modelServerTarget }}
{{- else }}
{{- $headless := include "common.headlessName" (dict "component" (include "common.component.modelServer" .) "values" .Values.modelServer "context" .) }}
{{- printf "dns:///%s:%d" (include "common.serviceHost" (dict "name" $headless "context" .)) (.Values.modelServer.grpcPort | int64) }}
{{- end }}
{{- end }}

{{/* The gateway Service's in-cluster URL (the `helm test` pod's target). */}}
{{- define "keras-serving.gatewayURL" -}}
{{- printf "http://%s:%d" (include "common.serviceHost" (dict "name" (include "keras-serving.gatewayFullname" .) "context" .)) (.Values.gateway.service.port | int64) }}
{{- end }}

{{/* The `helm test` pod's labels that the gateway NetworkPolicy admits: the release plus a
     component no Deployment of the chart uses, so the peer selects this pod and nothing else. */}}
{{- define "keras-serving.testSelectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/* The helm test pod runs the gateway image (it carries gateway.selftest), tagged like the
     gateway Deployment's. */}}
{{- define "keras-serving.gatewayImage" -}}
{{- include "common.image" (dict "image" .Values.gateway.image "tag" .Chart.AppVersion "global" .Values.global "name" "gateway" "path" "gateway.image") }}
{{- end }}

{{/* The path prefix the Ingress routes to the gateway ("" for ingress.path "/"). */}}
{{- define "keras-serving.ingressPrefix" -}}
{{- if .Values.ingress.enabled }}{{ trimSuffix "/" .Values.ingress.path }}{{ end }}
{{- end }}
