//! SQL for other engines: a segment's logical plan, unparsed per dialect.
//!
//! The plan is the one [`crate::plan`] builds with this module's form,
//! `form::Portable` (the planner's [`crate::plan::Form`] for other engines:
//! `count(CASE WHEN …)` instead of `FILTER`, dimension lookups as joins,
//! sequences as joins, and SQL-only functions for `ts`, UTC dates, weeks and
//! months, `within` and LIKE). The planner does not know this module; the
//! engine's optimizer rules never see this plan. DataFusion's unparser turns it
//! into one SELECT; [`Target`] is the unparser dialect that spells what
//! differs between engines: identifier quotes, timestamp literals, UTC dates,
//! LIKE and string escapes. What a dialect cannot express is an error.
//!
//! ```
//! use seglang::sql::{Dialect, SqlOptions};
//!
//! let compiled = seglang::compile(r#"click.email at_least 2 in campaigns "Black Friday" last 7d"#, None).unwrap();
//! let as_of = seglang::syntax::literal::parse_datetime("2026-11-01").unwrap();
//! let sql = seglang::sql::segment_sql(&compiled.program, 0, as_of, &SqlOptions::new(Dialect::Postgres)).unwrap();
//! assert!(sql.starts_with("SELECT"));
//! assert!(sql.contains("'Black Friday'"));
//! assert!(sql.contains("'2026-10-25 00:00:00+00:00'"));
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::builder::LogicalTableSource;
use datafusion::logical_expr::{lit, Expr, TableSource};
use datafusion::sql::sqlparser::ast::{self, TimezoneInfo};
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use datafusion::sql::unparser::dialect::Dialect as UnparserDialect;
use datafusion::sql::unparser::Unparser;

use crate::check::{ObjectIndex, Program};
use crate::data::{canonical_events_schema, canonical_ts_type, DataDir, DataError};
use crate::plan::{segment_plan, segment_select, PlanEnv, SqlTables};
use form::{Portable, SQL_LIKE, SQL_TS, SQL_UTC_DATE, SQL_UTC_MONTH, SQL_UTC_WEEK, SQL_WITHIN};

mod form;
mod select;

/// The engines Seg writes SQL for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    DataFusion,
    DuckDb,
    Postgres,
    Sqlite,
    MySql,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::DataFusion,
        Dialect::DuckDb,
        Dialect::Postgres,
        Dialect::Sqlite,
        Dialect::MySql,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DataFusion => "datafusion",
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
            Dialect::MySql => "mysql",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let found = match lower.as_str() {
            "postgresql" | "pg" => Some(Dialect::Postgres),
            "sqlite3" => Some(Dialect::Sqlite),
            _ => Dialect::ALL.into_iter().find(|d| d.name() == lower),
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
            let hint = crate::diagnostic::did_you_mean(s, names.iter().copied())
                .map(|m| format!(" (did you mean `{m}`?)"))
                .unwrap_or_default();
            format!(
                "unknown SQL dialect `{s}`{hint}; choose one of {}",
                names.join(", ")
            )
        })
    }
}

/// What the SQL is written for: the dialect and what the target's tables hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlOptions {
    pub dialect: Dialect,
    /// Whether `events.ts` is a zoned timestamp (`TIMESTAMP WITH TIME ZONE`)
    /// in the target; otherwise it holds UTC wall-clock times.
    pub zoned_ts: bool,
    /// Which optional tables exist in the target.
    pub profiles: bool,
    pub campaigns: bool,
    pub templates: bool,
    pub tags: bool,
    pub attributes: bool,
}

impl SqlOptions {
    /// Every table present and `ts` zoned: the layout `seg gen` writes.
    pub fn new(dialect: Dialect) -> Self {
        SqlOptions {
            dialect,
            zoned_ts: true,
            profiles: true,
            campaigns: true,
            templates: true,
            tags: true,
            attributes: true,
        }
    }

    /// The tables and `ts` type of a data directory.
    pub fn for_data(dialect: Dialect, data: &DataDir, objects: &ObjectIndex) -> Self {
        SqlOptions {
            dialect,
            zoned_ts: matches!(data.ts_type(), DataType::Timestamp(_, Some(_))),
            profiles: data.profiles.is_some(),
            campaigns: objects.campaigns.ids.is_some(),
            templates: objects.templates.ids.is_some(),
            tags: objects.has_tags,
            attributes: objects.has_attributes,
        }
    }
}

/// One standalone SELECT returning the ids of segment `segment`, ascending,
/// over the tables `events`, `profiles`, `campaigns`, `templates`, `tags`
/// and `attributes` of SPEC §5, with `as_of` inlined.
pub fn segment_sql(
    program: &Program,
    segment: usize,
    as_of: DateTime<Utc>,
    options: &SqlOptions,
) -> Result<String, DataError> {
    write_sql(program, segment, as_of, options, true).map(|(sql, _)| sql)
}

/// [`segment_sql`] as DataFusion's unparser writes the segment's plan, for
/// the segments [`segment_sql`] writes without one: the tests require the
/// same text of both.
#[doc(hidden)]
pub fn segment_sql_from_plan(
    program: &Program,
    segment: usize,
    as_of: DateTime<Utc>,
    options: &SqlOptions,
) -> Result<String, DataError> {
    write_sql(program, segment, as_of, options, false).map(|(sql, _)| sql)
}

fn write_sql(
    program: &Program,
    segment: usize,
    as_of: DateTime<Utc>,
    options: &SqlOptions,
    without_plan: bool,
) -> Result<(String, bool), DataError> {
    let objects = ObjectIndex::default();
    let int = |name: &str| Field::new(name, DataType::Int64, true);
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let table = |present: bool, fields: Vec<Field>| -> Option<Arc<dyn TableSource>> {
        present.then(|| {
            Arc::new(LogicalTableSource::new(Arc::new(Schema::new(fields)))) as Arc<dyn TableSource>
        })
    };
    let object_fields = || vec![text("object"), int("object_id")];
    let form = Portable {
        tables: SqlTables {
            campaigns: table(options.campaigns, vec![int("campaign_id"), text("name")]),
            templates: table(options.templates, vec![int("template_id"), text("name")]),
            tags: table(options.tags, [object_fields(), vec![text("tag")]].concat()),
            attributes: table(
                options.attributes,
                [object_fields(), vec![text("key"), text("value")]].concat(),
            ),
        },
    };
    let env = PlanEnv {
        events: Arc::new(LogicalTableSource::new(canonical_events_schema())),
        profiles: table(options.profiles, vec![int("profile_id")]),
        profiles_range: None,
        objects: &objects,
        ts_type: canonical_ts_type(),
        as_of,
        dense_counters: 0,
        form: &form,
    };
    let target = Target {
        dialect: options.dialect,
        zoned: options.zoned_ts,
    };
    // Not the unparser's "pretty" mode: it drops parentheses that the
    // conjunction with a semi join's EXISTS still needs.
    let unparser = Unparser::new(&target);
    let cannot = |e| DataError::new(format!("cannot write {} SQL: {e}", options.dialect));
    // A segment's SELECT is written from the planner's parts (a sequence's
    // subquery from its plan); a segment of samples alone, from the plan.
    let select = match without_plan {
        true => segment_select(program, segment, &env)?,
        false => None,
    };
    let planless = select.is_some();
    let mut statement = match select {
        Some(select) => select::Writer {
            target: &target,
            unparser,
        }
        .statement(select)
        .map_err(cannot)?,
        None => unparser
            .plan_to_sql(&segment_plan(program, segment, &env)?)
            .map_err(cannot)?,
    };
    let _ = ast::visit_expressions_mut(&mut statement, |e| {
        drop_redundant_parentheses(e);
        std::ops::ControlFlow::<()>::Continue(())
    });
    let mut sql = format!("{statement:#}");
    // sqlparser's multi-line form leaves the outer ORDER BY on the WHERE line.
    if let Some(at) = sql.rfind(" ORDER BY ") {
        sql.replace_range(at..at + 1, "\n");
    }
    if sql.contains('\0') {
        return Err(DataError::new(format!(
            "cannot write {} SQL: a string of the segment contains a NUL character, which SQL string literals cannot hold",
            options.dialect
        )));
    }
    Ok((sql, planless))
}

/// Removes the parentheses the unparser puts around every operand of AND and
/// OR where precedence makes them redundant (its own "pretty" mode removes too
/// many). Called on every expression, children first.
fn drop_redundant_parentheses(e: &mut ast::Expr) {
    use ast::BinaryOperator::{And, Or};
    match e {
        ast::Expr::BinaryOp {
            left,
            op: op @ (And | Or),
            right,
        } => {
            for side in [left, right] {
                if let ast::Expr::Nested(inner) = side.as_mut() {
                    let keep =
                        *op == And && matches!(inner.as_ref(), ast::Expr::BinaryOp { op: Or, .. });
                    if !keep {
                        let inner =
                            std::mem::replace(inner.as_mut(), ast::Expr::value(ast::Value::Null));
                        **side = inner;
                    }
                }
            }
        }
        ast::Expr::Case { conditions, .. } => {
            for when in conditions {
                if let ast::Expr::Nested(inner) = &mut when.condition {
                    let inner =
                        std::mem::replace(inner.as_mut(), ast::Expr::value(ast::Value::Null));
                    when.condition = inner;
                }
            }
        }
        _ => {}
    }
}

/// The unparser dialect for one engine.
struct Target {
    dialect: Dialect,
    zoned: bool,
}

impl Target {
    fn quote(&self) -> char {
        match self.dialect {
            Dialect::MySql => '`',
            _ => '"',
        }
    }
}

impl UnparserDialect for Target {
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        let plain = identifier
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && identifier
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        // Keywords are upper case; compared without making a copy.
        let keyword = || {
            ALL_KEYWORDS
                .binary_search_by(|k| {
                    k.bytes()
                        .cmp(identifier.bytes().map(|b| b.to_ascii_uppercase()))
                })
                .is_ok()
        };
        (!plain || keyword()).then(|| self.quote())
    }

    fn supports_nulls_first_in_sort(&self) -> bool {
        // Ids are never NULL; plain `ORDER BY … ASC` reads the same everywhere.
        false
    }

    fn supports_column_alias_in_table_alias(&self) -> bool {
        false
    }

    fn requires_derived_table_alias(&self) -> bool {
        true
    }

    fn timestamp_cast_dtype(&self, _unit: &TimeUnit, _tz: &Option<Arc<str>>) -> ast::DataType {
        match self.dialect {
            Dialect::Sqlite => ast::DataType::Text,
            Dialect::MySql => ast::DataType::Datetime(Some(6)),
            Dialect::DataFusion => ast::DataType::Timestamp(None, TimezoneInfo::None),
            Dialect::DuckDb | Dialect::Postgres if self.zoned => {
                ast::DataType::Timestamp(None, TimezoneInfo::WithTimeZone)
            }
            Dialect::DuckDb | Dialect::Postgres => {
                ast::DataType::Timestamp(None, TimezoneInfo::None)
            }
        }
    }

    fn timestamp_with_tz_to_string(&self, dt: DateTime<Tz>, _unit: TimeUnit) -> String {
        timestamp_text(dt.with_timezone(&Utc), self.dialect, self.zoned)
    }

    fn string_literal_to_sql(&self, s: &str) -> Option<ast::Expr> {
        Some(self.string_literal(s))
    }

    fn scalar_function_to_sql_overrides(
        &self,
        unparser: &Unparser,
        name: &str,
        args: &[Expr],
    ) -> DfResult<Option<ast::Expr>> {
        match name {
            SQL_UTC_DATE => self.utc_date(unparser, args).map(Some),
            SQL_LIKE => self.like(unparser, args).map(Some),
            SQL_TS => self.ts(unparser, args).map(Some),
            SQL_UTC_WEEK | SQL_UTC_MONTH => self.period(unparser, name, args).map(Some),
            SQL_WITHIN => self.within(unparser, args).map(Some),
            _ => Ok(None),
        }
    }
}

impl Target {
    /// A string literal, escaped here rather than by sqlparser: its printer
    /// takes `''` and `\'` inside a value for escapes already made, so that a
    /// name like `\' OR 1=1 --` would end the literal early. Quotes are
    /// doubled; MySQL also reads backslashes as escapes, so they are doubled
    /// there too. A placeholder prints its text as it is.
    fn string_literal(&self, s: &str) -> ast::Expr {
        let mut text = String::with_capacity(s.len() + 2);
        text.push('\'');
        for c in s.chars() {
            match c {
                '\'' => text.push_str("''"),
                '\\' if self.dialect == Dialect::MySql => text.push_str(r"\\"),
                c => text.push(c),
            }
        }
        text.push('\'');
        ast::Expr::value(ast::Value::Placeholder(text))
    }

    /// `ts` where it is compared or dated. SQLite has no timestamp type, so
    /// its text is brought to one form first: `T` becomes a space and a `Z`
    /// or `+00:00` suffix goes, so that text order is time order whichever of
    /// the usual ISO 8601 UTC spellings the table holds.
    fn ts(&self, unparser: &Unparser, args: &[Expr]) -> DfResult<ast::Expr> {
        let [ts] = args else {
            return plan_err!("{SQL_TS} takes one argument");
        };
        if self.dialect != Dialect::Sqlite {
            return unparser.expr_to_sql(ts);
        }
        let replace = |e: Expr, from: &str, to: &str| {
            Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                datafusion::functions::string::replace(),
                vec![e, lit(from), lit(to)],
            ))
        };
        let normal = replace(
            replace(replace(ts.clone(), "T", " "), "+00:00", ""),
            "Z",
            "",
        );
        unparser.expr_to_sql(&normal)
    }

    /// The UTC date of `ts`, as each engine computes it without regard to the
    /// session's time zone.
    fn utc_date(&self, unparser: &Unparser, args: &[Expr]) -> DfResult<ast::Expr> {
        let [ts] = args else {
            return plan_err!("{SQL_UTC_DATE} takes one argument");
        };
        let to_date = |e: ast::Expr| ast::Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(e),
            data_type: ast::DataType::Date,
            array: false,
            format: None,
        };
        let column = unparser.expr_to_sql(ts)?;
        Ok(match self.dialect {
            Dialect::DataFusion => to_date(column),
            Dialect::DuckDb if self.zoned => {
                to_date(unparser.scalar_function_to_sql("timezone", &[lit("UTC"), ts.clone()])?)
            }
            Dialect::Postgres if self.zoned => {
                to_date(ast::Expr::Nested(Box::new(ast::Expr::AtTimeZone {
                    timestamp: Box::new(column),
                    time_zone: Box::new(unparser.expr_to_sql(&lit("UTC"))?),
                })))
            }
            Dialect::DuckDb | Dialect::Postgres => to_date(column),
            Dialect::Sqlite => {
                unparser.scalar_function_to_sql("substr", &[ts.clone(), lit(1i64), lit(10i64)])?
            }
            Dialect::MySql => unparser.scalar_function_to_sql("DATE", std::slice::from_ref(ts))?,
        })
    }

    /// A key of the UTC week (Monday to Sunday) or calendar month of `ts`:
    /// any value that is equal exactly for instants of the same period.
    fn period(&self, unparser: &Unparser, name: &str, args: &[Expr]) -> DfResult<ast::Expr> {
        let [ts] = args else {
            return plan_err!("{name} takes one argument");
        };
        let week = name == SQL_UTC_WEEK;
        let date = form::utc_date(ts.clone());
        match self.dialect {
            Dialect::DataFusion => unparser.expr_to_sql(&if week {
                crate::plan::week_key(crate::plan::date_day(ts.clone()))
            } else {
                crate::plan::month_key(crate::plan::date_day(ts.clone()))
            }),
            Dialect::DuckDb | Dialect::Postgres => unparser.scalar_function_to_sql(
                "date_trunc",
                &[lit(if week { "week" } else { "month" }), date],
            ),
            // `weekday 0` moves to the next Sunday (or stays on one).
            Dialect::Sqlite if week => {
                unparser.scalar_function_to_sql("date", &[date, lit("weekday 0"), lit("-6 days")])
            }
            Dialect::Sqlite => {
                unparser.scalar_function_to_sql("substr", &[date, lit(1i64), lit(7i64)])
            }
            // Mode 3: weeks start on Monday, numbered with their ISO year.
            Dialect::MySql if week => {
                unparser.scalar_function_to_sql("YEARWEEK", &[date, lit(3i64)])
            }
            Dialect::MySql => unparser.scalar_function_to_sql("DATE_FORMAT", &[date, lit("%Y-%m")]),
        }
    }

    /// `later <= earlier + seconds`, exact to the microsecond.
    fn within(&self, unparser: &Unparser, args: &[Expr]) -> DfResult<ast::Expr> {
        let [later, earlier, Expr::Literal(ScalarValue::Int64(Some(seconds)), _)] = args else {
            return plan_err!("{SQL_WITHIN} takes two times and a literal number of seconds");
        };
        let (later_sql, earlier_sql) =
            (unparser.expr_to_sql(later)?, unparser.expr_to_sql(earlier)?);
        let binary =
            |left: ast::Expr, op: ast::BinaryOperator, right: ast::Expr| ast::Expr::BinaryOp {
                left: Box::new(left),
                op,
                right: Box::new(right),
            };
        let number = |n: i64| ast::Expr::value(ast::Value::Number(n.to_string(), false));
        let interval = match self.dialect {
            Dialect::Sqlite => {
                // Text times: whole seconds by strftime, then the fraction
                // (`.ffffff`, or nothing) as text, which orders like the
                // number when the digits are six or none.
                // SQLite rounds a fraction to milliseconds (`.999999` is the
                // next second): the fraction is cut off first.
                let whole = |t: &Expr| -> DfResult<ast::Expr> {
                    let seconds = Expr::ScalarFunction(
                        datafusion::logical_expr::expr::ScalarFunction::new_udf(
                            Arc::new(datafusion::logical_expr::ScalarUDF::new_from_impl(
                                form::SqlOnly::new("substr"),
                            )),
                            vec![t.clone(), lit(1i64), lit(19i64)],
                        ),
                    );
                    Ok(ast::Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: Box::new(
                            unparser.scalar_function_to_sql("strftime", &[lit("%s"), seconds])?,
                        ),
                        data_type: ast::DataType::Integer(None),
                        array: false,
                        format: None,
                    })
                };
                let fraction =
                    |t: &Expr| unparser.scalar_function_to_sql("substr", &[t.clone(), lit(20i64)]);
                let gap = ast::Expr::Nested(Box::new(binary(
                    whole(later)?,
                    ast::BinaryOperator::Minus,
                    whole(earlier)?,
                )));
                let shorter = binary(gap.clone(), ast::BinaryOperator::Lt, number(*seconds));
                let equal = binary(
                    binary(gap, ast::BinaryOperator::Eq, number(*seconds)),
                    ast::BinaryOperator::And,
                    binary(
                        fraction(later)?,
                        ast::BinaryOperator::LtEq,
                        fraction(earlier)?,
                    ),
                );
                return Ok(ast::Expr::Nested(Box::new(binary(
                    shorter,
                    ast::BinaryOperator::Or,
                    equal,
                ))));
            }
            Dialect::MySql => ast::Expr::Interval(ast::Interval {
                value: Box::new(number(*seconds)),
                leading_field: Some(ast::DateTimeField::Second),
                leading_precision: None,
                last_field: None,
                fractional_seconds_precision: None,
            }),
            _ => ast::Expr::Interval(ast::Interval {
                value: Box::new(ast::Expr::value(ast::Value::SingleQuotedString(format!(
                    "{seconds} seconds"
                )))),
                leading_field: None,
                leading_precision: None,
                last_field: None,
                fractional_seconds_precision: None,
            }),
        };
        Ok(ast::Expr::Nested(Box::new(binary(
            later_sql,
            ast::BinaryOperator::LtEq,
            binary(earlier_sql, ast::BinaryOperator::Plus, interval),
        ))))
    }

    /// `value LIKE pattern` with `\` escaping, case-sensitive.
    fn like(&self, unparser: &Unparser, args: &[Expr]) -> DfResult<ast::Expr> {
        let [value, Expr::Literal(ScalarValue::Utf8(Some(pattern)), _)] = args else {
            return plan_err!("{SQL_LIKE} takes a value and a literal pattern");
        };
        let tokens = like_tokens(pattern);
        if self.dialect == Dialect::Sqlite {
            // SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive match.
            let glob = glob_pattern(&tokens);
            return unparser.scalar_function_to_sql("glob", &[lit(glob), value.clone()]);
        }
        let pattern = unparser.expr_to_sql(&lit(like_pattern(&tokens)))?;
        Ok(ast::Expr::Like {
            negated: false,
            any: false,
            expr: Box::new(unparser.expr_to_sql(value)?),
            pattern: Box::new(pattern),
            // MySQL's default escape is already `\` (and `'\'` is not a
            // complete MySQL string).
            escape_char: (self.dialect != Dialect::MySql)
                .then(|| ast::Value::Placeholder(r"'\'".to_string()).into()),
        })
    }
}

/// A timestamp literal's text: `YYYY-MM-DD HH:MM:SS`, with microseconds when
/// not zero, and `+00:00` when `ts` is zoned. SQLite compares the text, so it
/// gets the form Python's sqlite3 and pandas write.
fn timestamp_text(t: DateTime<Utc>, dialect: Dialect, zoned: bool) -> String {
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.nanosecond() / 1_000;
    if micros != 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    if zoned
        && matches!(
            dialect,
            Dialect::DataFusion | Dialect::DuckDb | Dialect::Postgres
        )
    {
        s.push_str("+00:00");
    }
    s
}

/// A LIKE pattern read as Seg reads it (SPEC §6): `%`, `_`, and `\` escaping
/// the next character; a trailing `\` is a literal backslash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeToken {
    Any,
    One,
    Char(char),
}

fn like_tokens(pattern: &str) -> Vec<LikeToken> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => LikeToken::Any,
            '_' => LikeToken::One,
            '\\' => LikeToken::Char(chars.next().unwrap_or('\\')),
            c => LikeToken::Char(c),
        });
    }
    out
}

/// The pattern with escapes exactly where needed, so that every engine with
/// `\` as the escape character reads it the same way.
fn like_pattern(tokens: &[LikeToken]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            LikeToken::Any => out.push('%'),
            LikeToken::One => out.push('_'),
            LikeToken::Char(c @ ('%' | '_' | '\\')) => {
                out.push('\\');
                out.push(*c);
            }
            LikeToken::Char(c) => out.push(*c),
        }
    }
    out
}

/// The same match as a SQLite GLOB pattern (`*`, `?`, `[x]` for a literal).
fn glob_pattern(tokens: &[LikeToken]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            LikeToken::Any => out.push('*'),
            LikeToken::One => out.push('?'),
            LikeToken::Char(c @ ('*' | '?' | '[')) => {
                out.push('[');
                out.push(*c);
                out.push(']');
            }
            LikeToken::Char(c) => out.push(*c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_canonical_and_trailing_backslash_is_literal() {
        let t = like_tokens(r"a\%b_c%\q\");
        assert_eq!(like_pattern(&t), r"a\%b_c%q\\");
        assert_eq!(glob_pattern(&like_tokens(r"x*?[%_\_")), "x[*][?][[]*?_");
    }

    #[test]
    fn timestamps_print_microseconds_only_when_present() {
        let t = DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            timestamp_text(t, Dialect::Postgres, true),
            "2026-11-01 10:00:00+00:00"
        );
        let t = t + chrono::TimeDelta::microseconds(5);
        assert_eq!(
            timestamp_text(t, Dialect::Sqlite, true),
            "2026-11-01 10:00:00.000005"
        );
    }

    /// The SELECT written from the planner's parts is the one the unparser
    /// writes of the plan, over every example, dialect and target layout.
    #[test]
    fn the_select_written_without_a_plan_is_the_plan_s() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let as_of = crate::syntax::literal::parse_datetime("2026-11-01").unwrap();
        let mut layouts = vec![];
        for dialect in Dialect::ALL {
            let all = SqlOptions::new(dialect);
            let bare = SqlOptions {
                zoned_ts: false,
                profiles: false,
                campaigns: false,
                templates: false,
                tags: false,
                attributes: false,
                ..all.clone()
            };
            layouts.extend([all, bare]);
        }
        let (mut written, mut total) = (0, 0);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let program = crate::compile(&text, None).unwrap().program;
            for segment in 0..program.segments.len() {
                for options in &layouts {
                    total += 1;
                    let direct = write_sql(&program, segment, as_of, options, true);
                    let planned = segment_sql_from_plan(&program, segment, as_of, options);
                    let ((direct, planless), planned) = match (direct, planned) {
                        (Ok(d), Ok(p)) => (d, p),
                        (d, p) => {
                            assert_eq!(d.is_ok(), p.is_ok(), "{}", file.display());
                            continue;
                        }
                    };
                    written += usize::from(planless);
                    assert_eq!(
                        direct,
                        planned,
                        "{} segment {segment} for {options:?}",
                        file.display()
                    );
                }
            }
        }
        // Only the segments of samples alone need the plan.
        assert!(
            total > 500 && written * 100 > total * 95,
            "{written} of {total}"
        );
    }

    #[test]
    fn dialect_names_parse_with_suggestions() {
        assert_eq!("DuckDB".parse::<Dialect>(), Ok(Dialect::DuckDb));
        assert_eq!("postgresql".parse::<Dialect>(), Ok(Dialect::Postgres));
        let err = "postgre".parse::<Dialect>().unwrap_err();
        assert!(err.contains("did you mean `postgres`"), "{err}");
    }
}
