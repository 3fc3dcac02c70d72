package dev.eddy.bench.flink;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.util.EnvironmentInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;

/**
 * The Apache Flink peer of eddy's Nexmark benchmark: runs one of the nexmark repository's Flink
 * SQL queries (q0, q1, q2, q3, q4, q5, q7, q8; resources nexmark/qN.sql) over the three CSV files
 * of `eddy nexmark-gen` (resources nexmark/ddl.sql) in a local mini cluster in this JVM, in
 * streaming mode, and prints its throughput.
 *
 * <pre>
 * NexmarkFlink --data DIR --query qN --parallelism P [--checkpoint-ms MS] [--out FILE]
 * NexmarkFlink --version     (prints FLINK_VERSION flink=... java=... jvm=...)
 * </pre>
 *
 * <p>Without --out the query's sink is the nexmark repository's `blackhole` table, so the run
 * measures the engine. With --out the query's SELECT goes through toChangelogStream into a
 * FinalResultSink of parallelism 1 instead, which applies the changelog (+I/+U add a row, -U/-D
 * remove one) and at the end of the input writes the final result of the query, updating ones
 * (q4) included, to FILE (see FinalResultSink for the format).
 *
 * <p>Output on stdout, two lines per run (single-threaded: main runs everything but the job):
 *
 * <pre>
 * FLINK query=qN parallelism=P events=N seconds=S eps=E
 * FLINK_TIMES query=qN parallelism=P plan_submit_seconds=A job_seconds=S execute_to_end_seconds=B
 *     input_check_seconds=C checkpoint_ms=MS [out_rows=R]
 * </pre>
 *
 * where events = lines of persons.csv + auctions.csv + bids.csv, seconds = the job's net run time
 * as the mini cluster measured it (JobExecutionResult#getNetRuntime: from the job's creation to
 * its end; without JVM start, SQL planning and mini cluster start), eps = events / seconds,
 * plan_submit_seconds = from the execute call to the job's submission (planning, optimisation,
 * mini cluster start), execute_to_end_seconds = from the execute call to the last result,
 * input_check_seconds = the check of the input files before the job (not in the other times).
 *
 * <p>Before the job, every line of the three files is checked against the file contract
 * (checkFile: field count, integers, timestamps); a bad line is reported as FILE:LINE.
 *
 * <p>Exit status: 0 done, 1 the job failed (its root cause on stderr), 2 bad arguments or
 * unreadable or malformed data (the message names the argument, or the file and line).
 */
public final class NexmarkFlink {
    static final String[] QUERIES = {"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"};
    static final String[] FILES = {"persons.csv", "auctions.csv", "bids.csv"};
    /**
     * The field types of each file of FILES, as the file contract gives them: 'i' a 64-bit
     * integer, 't' a timestamp 'YYYY-MM-DD HH:MM:SS.mmm', 's' a string.
     */
    static final String[] FIELD_TYPES = {"isssssts", "issiittiis", "iiissts"};

    /** A problem with the arguments or the input files: exit status 2. */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    /** The parsed command line. */
    static final class Args {
        Path data;
        String query;
        int parallelism = 1;
        long checkpointMs; // 0: no checkpoints
        Path out; // null: blackhole sink
        boolean version; // --version: print the versions and exit
    }

    static final String USAGE =
            "usage: NexmarkFlink --data DIR --query qN --parallelism P [--checkpoint-ms MS]"
                    + " [--out FILE]\n"
                    + "       NexmarkFlink --version\n"
                    + "  qN is one of q0 q1 q2 q3 q4 q5 q7 q8;"
                    + " DIR holds persons.csv, auctions.csv, bids.csv";

    private NexmarkFlink() {}

    public static void main(String[] argv) {
        int status;
        try {
            run(parseArgs(argv));
            status = 0;
        } catch (UsageError e) {
            System.err.println("NexmarkFlink: " + e.getMessage());
            status = 2;
        } catch (Exception e) {
            Throwable root = e;
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            System.err.println("NexmarkFlink: the job failed: " + e);
            if (root != e) {
                System.err.println("NexmarkFlink: root cause: " + root);
            }
            status = 1;
        }
        System.out.flush();
        // Flink's mini cluster may leave non-daemon threads behind: end the JVM explicitly.
        System.exit(status);
    }

    static Args parseArgs(String[] argv) throws UsageError {
        Args a = new Args();
        for (int i = 0; i < argv.length; i++) {
            String flag = argv[i];
            if (flag.equals("--help") || flag.equals("-h")) {
                throw new UsageError(USAGE);
            }
            if (flag.equals("--version")) {
                a.version = true;
                continue;
            }
            if (i + 1 >= argv.length) {
                throw new UsageError(flag + ": missing value\n" + USAGE);
            }
            String v = argv[++i];
            switch (flag) {
                case "--data":
                    a.data = Path.of(v).toAbsolutePath().normalize();
                    break;
                case "--query":
                    a.query = v;
                    break;
                case "--parallelism":
                    a.parallelism = (int) parseLong(flag, v, 1, 1024);
                    break;
                case "--checkpoint-ms":
                    a.checkpointMs = parseLong(flag, v, 0, Long.MAX_VALUE);
                    break;
                case "--out":
                    a.out = Path.of(v).toAbsolutePath().normalize();
                    break;
                default:
                    throw new UsageError("unknown argument '" + flag + "'\n" + USAGE);
            }
        }
        if (a.version) {
            return a;
        }
        if (a.data == null) {
            throw new UsageError("--data DIR is required\n" + USAGE);
        }
        if (a.data.toString().indexOf('\'') >= 0) {
            throw new UsageError("--data " + a.data + ": a quote in the path is not supported");
        }
        if (a.query == null || !List.of(QUERIES).contains(a.query)) {
            throw new UsageError(
                    "--query: '" + a.query + "' is not one of " + String.join(" ", QUERIES));
        }
        return a;
    }

    static long parseLong(String flag, String v, long min, long max) throws UsageError {
        long n;
        try {
            n = Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageError(flag + ": '" + v + "' is not an integer");
        }
        if (n < min || n > max) {
            throw new UsageError(flag + ": " + n + " is out of range [" + min + ", " + max + "]");
        }
        return n;
    }

    /** Number of lines of a file (a last line without a newline counts). */
    static long countLines(Path p) throws UsageError {
        long lines = 0;
        int last = '\n';
        byte[] buf = new byte[1 << 16];
        try (InputStream in = Files.newInputStream(p)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                for (int i = 0; i < n; i++) {
                    if (buf[i] == '\n') {
                        lines++;
                    }
                }
                last = buf[n - 1];
            }
        } catch (IOException e) {
            throw new UsageError(p + ": cannot read: " + e.getMessage());
        }
        return last == '\n' ? lines : lines + 1;
    }

    /**
     * Checks every line of a data file against the file contract (the number of fields, and
     * that integer and timestamp fields parse) and returns the number of lines. Flink's csv
     * format reports a bad field without its file and line, and takes a line with too few
     * fields as if the last ones were NULL; this check names FILE:LINE instead and rejects it.
     * Runs before the job, outside the measured time.
     *
     * @param types one character per field: 'i' 64-bit integer, 't' timestamp, 's' string
     * @throws UsageError naming FILE:LINE and the field on the first bad line
     */
    static long checkFile(Path p, String types) throws UsageError {
        long line = 0;
        try (BufferedReader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
            String s;
            while ((s = r.readLine()) != null) {
                line++;
                int field = 0;
                int start = 0;
                while (true) {
                    int end = s.indexOf(',', start);
                    if (end < 0) {
                        end = s.length();
                    }
                    if (field >= types.length()) {
                        throw new UsageError(p + ":" + line + ": more than " + types.length()
                                + " fields");
                    }
                    String why = badField(types.charAt(field), s, start, end);
                    if (why != null) {
                        throw new UsageError(p + ":" + line + ": field " + (field + 1) + " '"
                                + s.substring(start, end) + "' " + why);
                    }
                    field++;
                    if (end == s.length()) {
                        break;
                    }
                    start = end + 1;
                }
                if (field != types.length()) {
                    throw new UsageError(p + ":" + line + ": " + field + " fields, expected "
                            + types.length());
                }
            }
        } catch (IOException e) {
            throw new UsageError(p + ": cannot read: " + e.getMessage());
        }
        return line;
    }

    /** Why s[start, end) is not a value of the type, or null if it is. */
    static String badField(char type, String s, int start, int end) {
        if (type == 'i') {
            int i = start;
            if (i < end && s.charAt(i) == '-') {
                i++;
            }
            if (i == end || end - i > 19) {
                return "is not a 64-bit integer";
            }
            for (; i < end; i++) {
                char c = s.charAt(i);
                if (c < '0' || c > '9') {
                    return "is not a 64-bit integer";
                }
            }
            if (end - start >= 19) { // may overflow: let the library decide
                try {
                    Long.parseLong(s.substring(start, end));
                } catch (NumberFormatException e) {
                    return "is not a 64-bit integer";
                }
            }
            return null;
        }
        if (type == 't') {
            // YYYY-MM-DD HH:MM:SS.mmm
            String pattern = "dddd-dd-dd dd:dd:dd.ddd";
            if (end - start != pattern.length()) {
                return "is not a timestamp YYYY-MM-DD HH:MM:SS.mmm";
            }
            for (int i = 0; i < pattern.length(); i++) {
                char c = s.charAt(start + i);
                char want = pattern.charAt(i);
                if (want == 'd' ? (c < '0' || c > '9') : c != want) {
                    return "is not a timestamp YYYY-MM-DD HH:MM:SS.mmm";
                }
            }
            return null;
        }
        if (s.indexOf('"', start) >= 0 && s.indexOf('"', start) < end) {
            return "holds a quote (the file contract has no quoting)";
        }
        return null;
    }

    static String resource(String name) throws IOException {
        try (InputStream in = NexmarkFlink.class.getResourceAsStream("/nexmark/" + name)) {
            if (in == null) {
                throw new IOException("resource nexmark/" + name + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The statements of a SQL script: split at ';' line ends, whole-line comments dropped. */
    static List<String> statements(String script) {
        StringBuilder sb = new StringBuilder();
        for (String line : script.split("\n")) {
            if (!line.strip().startsWith("--")) {
                sb.append(line).append('\n');
            }
        }
        List<String> out = new ArrayList<>();
        for (String s : sb.toString().split(";\\s*\n")) {
            if (!s.isBlank()) {
                out.add(s.strip().replaceAll(";$", ""));
            }
        }
        return out;
    }

    static void run(Args a) throws Exception {
        if (a.version) {
            String jvm = System.getProperty("java.vm.name") + " "
                    + System.getProperty("java.vm.version");
            System.out.printf("FLINK_VERSION flink=%s java=%s jvm=%s%n",
                    EnvironmentInformation.getVersion(), System.getProperty("java.version"),
                    jvm.replace(' ', '_'));
            return;
        }
        long tc = System.nanoTime();
        long events = 0;
        for (int i = 0; i < FILES.length; i++) {
            Path p = a.data.resolve(FILES[i]);
            if (!Files.isRegularFile(p)) {
                throw new UsageError(p + ": no such file (--data must name a directory written by"
                        + " eddy nexmark-gen)");
            }
            events += checkFile(p, FIELD_TYPES[i]);
        }
        double checkSeconds = (System.nanoTime() - tc) / 1e9;

        Map<String, String> conf = new HashMap<>();
        conf.put("parallelism.default", Integer.toString(a.parallelism));
        if (a.out != null) {
            // The result sink keeps its rows in memory, not in Flink state: a restart would lose
            // them, so a failure fails the run instead.
            conf.put("restart-strategy.type", "none");
        }
        Path checkpointDir = null;
        if (a.checkpointMs > 0) {
            // Checkpoints to files (as eddy's), aligned, exactly once: Flink's defaults otherwise.
            checkpointDir = Files.createTempDirectory("nexmark-flink-chk");
            conf.put("execution.checkpointing.interval", a.checkpointMs + " ms");
            conf.put("execution.checkpointing.dir", checkpointDir.toUri().toString());
        }
        long t0;
        long t1;
        long t2;
        double jobSeconds;
        try {
            StreamExecutionEnvironment env =
                    StreamExecutionEnvironment.createLocalEnvironment(Configuration.fromMap(conf));
            env.setParallelism(a.parallelism);
            StreamTableEnvironment tEnv =
                    StreamTableEnvironment.create(env, EnvironmentSettings.inStreamingMode());

            String dataUri = a.data.toUri().toString().replaceAll("/$", "");
            for (String s : statements(resource("ddl.sql"))) {
                tEnv.executeSql(s.replace("${DATA}", dataUri));
            }
            List<String> q = statements(resource(a.query + ".sql"));
            if (q.size() != 2) {
                throw new IOException("nexmark/" + a.query + ".sql: expected CREATE TABLE and"
                        + " INSERT, found " + q.size() + " statements");
            }
            tEnv.executeSql(q.get(0)); // the blackhole sink table
            String sink = "nexmark_" + a.query;

            t0 = System.nanoTime();
            JobClient client;
            if (a.out == null) {
                TableResult result = tEnv.executeSql(q.get(1));
                t1 = System.nanoTime();
                client = result.getJobClient().orElseThrow();
                result.await();
            } else {
                Matcher m = Pattern.compile("(?is)^INSERT\\s+INTO\\s+" + sink + "\\s+(.*)$")
                                    .matcher(q.get(1));
                if (!m.matches()) {
                    throw new IOException("nexmark/" + a.query + ".sql: no INSERT INTO " + sink);
                }
                List<String> columns = tEnv.from(sink).getResolvedSchema().getColumnNames();
                DataStream<Row> changes = tEnv.toChangelogStream(tEnv.sqlQuery(m.group(1)));
                changes.sinkTo(new FinalResultSink(a.out.toString(), columns))
                        .name("final-result")
                        .setParallelism(1);
                client = env.executeAsync("nexmark " + a.query + " --out");
                t1 = System.nanoTime();
            }
            JobExecutionResult jr = client.getJobExecutionResult().get();
            t2 = System.nanoTime();
            jobSeconds = jr.getNetRuntime() / 1000.0;
        } finally {
            if (checkpointDir != null) {
                deleteTree(checkpointDir);
            }
        }

        System.out.printf("FLINK query=%s parallelism=%d events=%d seconds=%.3f eps=%.0f%n",
                a.query, a.parallelism, events, jobSeconds, events / jobSeconds);
        System.out.printf("FLINK_TIMES query=%s parallelism=%d plan_submit_seconds=%.3f"
                        + " job_seconds=%.3f execute_to_end_seconds=%.3f input_check_seconds=%.3f"
                        + " checkpoint_ms=%d%s%n",
                a.query, a.parallelism, (t1 - t0) / 1e9, jobSeconds, (t2 - t0) / 1e9, checkSeconds,
                a.checkpointMs, a.out == null ? "" : " out_rows=" + (countLines(a.out) - 1));
    }

    static void deleteTree(Path root) throws IOException {
        try (var paths = Files.walk(root)) {
            List<Path> all = new ArrayList<>();
            paths.forEach(all::add);
            for (int i = all.size() - 1; i >= 0; i--) {
                Files.deleteIfExists(all.get(i));
            }
        }
    }
}
