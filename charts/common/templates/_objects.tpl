{{/*
Objects both components render alike: (dict "name" <object name> "labels" <labels YAML>
"selector" <selector labels YAML> "values" <component values> "context" $).
*/}}

{{/* HorizontalPodAutoscaler on CPU; `autoscaling.behavior` passes scale-up/down windows through. */}}
{{- define "common.hpa" -}}
{{- $autoscaling := .values.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- .labels | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ $autoscaling.minReplicas | int64 }}
  maxReplicas: {{ $autoscaling.maxReplicas | int64 }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage | int64 }}
  {{- with $autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* PodDisruptionBudget: maxUnavailable is a count or a percentage ("50%"). */}}
{{- define "common.pdb" -}}
{{- $max := .values.pdb.maxUnavailable }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- .labels | nindent 4 }}
spec:
  maxUnavailable: {{ kindIs "string" $max | ternary (quote $max) (toString (int64 $max)) }}
  selector:
    matchLabels:
      {{- .selector | nindent 6 }}
{{- end }}
