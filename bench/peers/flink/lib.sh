# bench/peers/flink/lib.sh: sourced by run.sh and check.sh. flink_build builds the peer once
# (target/eddy-flink-peer-1.0.jar and target/classpath.txt, the dependencies' jars in the local
# Maven repository) and sets flink_cp; flink_java runs its main class with that class path.
# Maven: offline (-o) first, so a filled ~/.m2 needs no network; online from Maven Central when
# something is missing. JAVA_OPTS adds JVM options (none by default).

flink_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
flink_cp=

flink_build() {
	local jar=$flink_dir/target/eddy-flink-peer-1.0.jar cpfile=$flink_dir/target/classpath.txt
	local stale=1
	if [[ -f $jar && -f $cpfile ]]; then
		stale=0
		# Rebuild when a source, resource or the pom is newer than the jar.
		if [[ -n $(find "$flink_dir/pom.xml" "$flink_dir/src" -newer "$jar" -type f -print -quit) ]]; then
			stale=1
		fi
	fi
	if ((stale)); then
		command -v mvn >/dev/null || { echo "flink peer: mvn (Apache Maven) is not installed" >&2; return 2; }
		command -v java >/dev/null || { echo "flink peer: java (JDK 17+) is not installed" >&2; return 2; }
		echo "flink peer: building target/ with Maven" >&2
		if ! (cd "$flink_dir" && mvn -q -o package >/dev/null 2>&1); then
			(cd "$flink_dir" && mvn -q package) >&2 || { echo "flink peer: the Maven build failed" >&2; return 1; }
		fi
	fi
	flink_cp=$jar:$(cat "$cpfile")
}

flink_java() {
	# shellcheck disable=SC2086 # JAVA_OPTS is a list of options
	java ${JAVA_OPTS:-} -cp "$flink_cp" dev.eddy.bench.flink.NexmarkFlink "$@"
}
