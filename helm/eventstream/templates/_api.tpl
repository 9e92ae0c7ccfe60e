{{/*
The API services: name, port and the variables naming their listen address
and shutdown budget (services/<name>/config.go). Observability (the
published-events API and the console) unless observability.enabled is false.
*/}}
{{- define "eventstream.apiServices" -}}
{{- $out := list -}}
{{- $out = append $out (dict "name" "ingest" "port" 8082 "addrEnv" "INGEST_ADDR" "shutdownEnv" "INGEST_SHUTDOWN_TIMEOUT" "values" .Values.ingest) -}}
{{- $out = append $out (dict "name" "configapi" "port" 8081 "addrEnv" "CONFIGAPI_ADDR" "shutdownEnv" "CONFIGAPI_SHUTDOWN_TIMEOUT" "values" .Values.configapi) -}}
{{- if .Values.observability.enabled -}}
{{- $out = append $out (dict "name" "observability" "port" 8084 "addrEnv" "OBSERVABILITY_ADDR" "shutdownEnv" "OBSERVABILITY_SHUTDOWN_TIMEOUT" "values" .Values.observability) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
