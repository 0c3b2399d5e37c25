{{/* The model server's objects are named and labelled by charts/common, from its values. The
     alias (modelServer) becomes .Chart.Name, which is not a valid DNS name: the component name
     comes from common.component.modelServer instead. */}}
{{- define "model-server.fullname" -}}
{{- include "common.fullname" (dict "component" (include "common.component.modelServer" .) "values" .Values "context" .) }}
{{- end }}

{{- define "model-server.headlessName" -}}
{{- include "common.headlessName" (dict "component" (include "common.component.modelServer" .) "values" .Values "context" .) }}
{{- end }}

{{- define "model-server.selectorLabels" -}}
{{- include "common.selectorLabels" (dict "component" (include "common.component.modelServer" .) "values" .Values "context" .) }}
{{- end }}

{{- define "model-server.labels" -}}
{{- include "common.labels" (dict "component" (include "common.component.modelServer" .) "values" .Values "context" .) }}
{{- end }}

{{/* "2.21.0" on CPU, "2.21.0-gpu" on GPU, unless a tag or digest is given. */}}
{{- define "model-server.image" -}}
{{- $tag := printf "%s%s" .Chart.AppVersion (ternary "-gpu" "" .Values.gpu.enabled) }}
{{- include "common.image" (dict "image" .Values.image "tag" $tag "global" .Values.global "name" "model server" "path" (ternary "modelServer.image" "image" (contains "/charts/" .Template.BasePath))) }}
{{- end }}

{{- define "model-server.version" -}}
{{- include "common.version" .Values.global.model.version }}
{{- end }}

{{- define "model-server.modelDir" -}}
{{- printf "/models/%s/%s" .Values.global.model.name (include "model-server.version" .) }}
{{- end }}

{{- define "model-server.configEnabled" -}}
{{- if or .Values.metrics.enabled .Values.batching.enabled }}true{{ end }}
{{- end }}

{{/* A ReadWriteOnce claim the chart creates: one node can mount it, so one pod at a time. */}}
{{- define "model-server.singleNodeClaim" -}}
{{- $source := .Values.global.model.source }}
{{- if and (eq $source.type "pvc") (not $source.pvc.existingClaim) (has "ReadWriteOnce" $source.pvc.accessModes) (not (has "ReadOnlyMany" $source.pvc.accessModes)) (not (has "ReadWriteMany" $source.pvc.accessModes)) }}true{{ end }}
{{- end }}

{{/* Rolling update: a surge pod needs a second GPU (one-GPU pools have none) or a second node's
     mount of a ReadWriteOnce claim, so there the default replaces pods one at a time
     (maxSurge 0, maxUnavailable 1); elsewhere capacity never drops (maxSurge 1, maxUnavailable 0).
     rollingUpdate.maxSurge / maxUnavailable override either. */}}
{{- define "model-server.rollingUpdate" -}}
{{- $oneAtATime := or .Values.gpu.enabled (eq (include "model-server.singleNodeClaim" .) "true") }}
{{- $surge := .Values.rollingUpdate.maxSurge }}
{{- $unavailable := .Values.rollingUpdate.maxUnavailable }}
{{- if or (kindIs "invalid" $surge) (eq (toString $surge) "") }}{{ $surge = ternary 0 1 $oneAtATime }}{{ end }}
{{- if or (kindIs "invalid" $unavailable) (eq (toString $unavailable) "") }}{{ $unavailable = ternary 1 0 $oneAtATime }}{{ end }}
maxSurge: {{ kindIs "string" $surge | ternary (quote $surge) (toString (int64 $surge)) }}
maxUnavailable: {{ kindIs "string" $unavailable | ternary (quote $unavailable) (toString (int64 $unavailable)) }}
{{- end }}

{{/* TF Serving sizes its thread pools to the node's cores, not to the container's CPU limit:
     derive the parallelism from the limit (rounded up), unless set. */}}
{{- define "model-server.cpuLimitCores" -}}
{{- $limit := dig "limits" "cpu" "" .Values.resources | toString }}
{{- if not $limit }}0
{{- else if hasSuffix "m" $limit }}{{ div (add (trimSuffix "m" $limit | int64) 999) 1000 }}
{{- else }}{{ ceil ($limit | float64) | int64 }}
{{- end }}
{{- end }}

{{/* TF Serving's --grpc_channel_arguments: the server closes each client connection after
     maxConnectionAgeSeconds (GOAWAY, then maxConnectionAgeGraceSeconds for calls in flight), so
     gateways re-resolve the headless Service and reach model servers added since they connected. */}}
{{- define "model-server.grpcChannelArguments" -}}
{{- $age := .Values.connections.maxConnectionAgeSeconds | int64 }}
{{- $grace := .Values.connections.maxConnectionAgeGraceSeconds | int64 }}
{{- printf "grpc.max_connection_age_ms=%d,grpc.max_connection_age_grace_ms=%d" (mul $age 1000) (mul $grace 1000) }}
{{- end }}

{{/* Checks that keep a values mistake out of the cluster (each fails the render with the fix). */}}
{{- define "model-server.validate" -}}
{{- if eq (.Values.grpcPort | int64) (.Values.restPort | int64) }}
{{- fail (printf "modelServer.grpcPort and modelServer.restPort are both %d: TF Serving needs two ports" (.Values.grpcPort | int64)) }}
{{- end }}
{{- /* TF Serving ignores SIGTERM (tensorflow/serving#1853): a stopping pod serves until the
       kubelet kills it when terminationGracePeriodSeconds end. Before that, every gateway must
       have left it: its connection is closed at the latest maxConnectionAge + grace after the pod
       left the Service's DNS, and the gateway re-resolves within its DNS interval. */}}
{{- $age := .Values.connections.maxConnectionAgeSeconds | int64 }}
{{- $grace := .Values.connections.maxConnectionAgeGraceSeconds | int64 }}
{{- $drain := add $age $grace 10 }}
{{- if lt (.Values.preStopSleepSeconds | int64) $drain }}
{{- fail (printf "modelServer.preStopSleepSeconds (%d) must be at least connections.maxConnectionAgeSeconds + connections.maxConnectionAgeGraceSeconds + 10 s for DNS (= %d): TF Serving ignores SIGTERM, and gateways still connected when the pod is killed lose their calls in flight" (.Values.preStopSleepSeconds | int64) $drain) }}
{{- end }}
{{- if lt (.Values.terminationGracePeriodSeconds | int64) (.Values.preStopSleepSeconds | int64) }}
{{- fail (printf "modelServer.terminationGracePeriodSeconds (%d) must be at least modelServer.preStopSleepSeconds (%d): the kubelet kills the pod when the grace period ends, cutting the drain short" (.Values.terminationGracePeriodSeconds | int64) (.Values.preStopSleepSeconds | int64)) }}
{{- end }}
{{- if and (include "model-server.useImageVolume" .) (semverCompare "<1.33.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "global.model.source.image.useImageVolume needs Kubernetes 1.33 or newer (the ImageVolume feature gate on, the default from 1.35); this cluster is %s: set it to false to copy the model in with an init container" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if include "model-server.singleNodeClaim" . }}
{{- $surge := (include "model-server.rollingUpdate" . | fromYaml).maxSurge | toString }}
{{- if or .Values.autoscaling.enabled (gt (.Values.replicaCount | int64) 1) (not (has $surge (list "0" "0%"))) }}
{{- fail "global.model.source.pvc.accessModes is [ReadWriteOnce]: only one node can mount the claim, so the model server can run one pod at a time (replicaCount 1, no autoscaling, rollingUpdate.maxSurge 0). Use ReadOnlyMany or ReadWriteMany storage (EFS, NFS) for more, or the image or url source." }}
{{- end }}
{{- end }}
{{- end }}
