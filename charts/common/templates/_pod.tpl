{{/*
The pod-spec block every keras-serving pod shares: (dict "values" <component values> "global"
.Values.global "selector" <selector labels YAML>).
*/}}

{{/* imagePullSecrets: names ("regcred") or LocalObjectReferences ({name: regcred}). */}}
{{- define "common.imagePullSecrets" -}}
{{- with .global.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  {{- if kindIs "map" . }}
  - name: {{ .name | quote }}
  {{- else }}
  - name: {{ . | quote }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Scheduling: priority, spread over nodes, node selector, tolerations, affinity. */}}
{{- define "common.podScheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if .values.topologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- .selector | nindent 8 }}
{{- end }}
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
{{- end }}
